//! Storage: events applied once, jobs derived idempotently, status only forward, rollback
//! re-derives, and the API's reads. Each test runs on SQLite and on PostgreSQL when
//! ATTESTA_TEST_POSTGRES_URL is set.

#![allow(clippy::unwrap_used)]

mod core_support;

use alloy::{
    primitives::{Address, B256, Bytes, Log, U256, keccak256},
    sol_types::SolEvent,
};
use attesta_relayer::{
    Store,
    store::chain::{RangeBatch, StoredEvent},
    watcher::ChainEvent,
};
use attesta_sdk::{bindings::JobEscrow, relay::RelayJobStatus};
use core_support::on_both;

const CHAIN: u64 = 31337;
const ESCROW: Address = Address::repeat_byte(0xee);

fn event(block: u64, index: u64, data: alloy::primitives::LogData) -> StoredEvent {
    let log = Log { address: ESCROW, data };
    let event = ChainEvent::decode(&log).unwrap().unwrap();
    StoredEvent {
        block_number: block,
        log_index: index,
        block_hash: B256::with_last_byte(u8::try_from(block).unwrap()),
        tx_hash: B256::repeat_byte(u8::try_from(block).unwrap()),
        block_time: 1_000 + block,
        job_id: event.job_id().map(|id| i64::try_from(id).unwrap()),
        event,
        log,
    }
}

fn created(block: u64, job: u64, input: &[u8]) -> StoredEvent {
    let e = JobEscrow::JobCreated {
        jobId: U256::from(job),
        client: Address::repeat_byte(0xc1),
        modelId: keccak256(b"model"),
        inputHash: keccak256(input),
        fee: U256::from(5),
        deadline: U256::from(2_000),
    };
    event(block, 0, e.encode_log_data())
}

fn settled(block: u64, job: u64, output: &[u8]) -> StoredEvent {
    let e = JobEscrow::JobSettled {
        jobId: U256::from(job),
        resultHash: keccak256(output),
        runtimeId: B256::repeat_byte(0x77),
        signers: vec![Address::repeat_byte(1), Address::repeat_byte(2)],
        output: Bytes::copy_from_slice(output),
    };
    event(block, 1, e.encode_log_data())
}

fn released(block: u64, job: u64) -> StoredEvent {
    let e = JobEscrow::PaymentReleased {
        jobId: U256::from(job),
        signerShare: U256::from(1),
        protocolFee: U256::ZERO,
    };
    event(block, 2, e.encode_log_data())
}

fn batch(from: u64, to: u64, events: Vec<StoredEvent>) -> RangeBatch {
    RangeBatch {
        chain_id: CHAIN,
        from,
        to,
        to_hash: B256::with_last_byte(u8::try_from(to).unwrap()),
        to_parent: B256::ZERO,
        events,
        window: 64,
    }
}

async fn status(store: &Store, job: u64) -> Option<RelayJobStatus> {
    store.job_view(U256::from(job)).await.unwrap().map(|v| v.status)
}

#[tokio::test]
async fn a_replayed_event_changes_nothing() {
    on_both("replayed_event", |store| async move {
        let first = batch(1, 10, vec![created(3, 1, b"a"), settled(7, 1, b"out")]);
        let outcome = store.commit_range(&first).await.unwrap().unwrap();
        assert_eq!(outcome.new_events, 2);
        let view = store.job_view(U256::from(1)).await.unwrap().unwrap();
        // The same logs delivered again in a later range (a provider replaying them) are
        // skipped by their (block, index) key: nothing is applied twice.
        let again = batch(11, 20, vec![created(3, 1, b"a"), settled(7, 1, b"out")]);
        let outcome = store.commit_range(&again).await.unwrap().unwrap();
        assert_eq!(outcome.new_events, 0);
        assert_eq!(store.job_view(U256::from(1)).await.unwrap().unwrap(), view);
        assert_eq!(store.event_count().await.unwrap(), 2);
        assert_eq!(store.cursor(CHAIN).await.unwrap(), Some(21));
        // A batch for a range the cursor has passed is refused whole.
        assert!(store.commit_range(&first).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn a_range_applied_but_not_committed_leaves_no_trace() {
    on_both("uncommitted_range", |store| async move {
        let b = batch(1, 5, vec![created(2, 1, b"a")]);
        {
            // Killed before the commit (R1): the transaction is dropped, i.e. rolled back.
            let mut tx = store.pool().begin().await.unwrap();
            Store::apply_range(&mut tx, &b).await.unwrap().unwrap();
        }
        assert_eq!(store.event_count().await.unwrap(), 0);
        assert_eq!(store.cursor(CHAIN).await.unwrap(), None);
        assert!(store.job_view(U256::from(1)).await.unwrap().is_none());
        // The restart replays the range once.
        store.commit_range(&b).await.unwrap().unwrap();
        assert_eq!(store.event_count().await.unwrap(), 1);
        assert_eq!(status(&store, 1).await, Some(RelayJobStatus::Open));
    })
    .await;
}

#[tokio::test]
async fn job_status_only_moves_forward() {
    on_both("status_forward", |store| async move {
        store.commit_range(&batch(1, 4, vec![created(2, 1, b"a"), released(4, 1)])).await.unwrap();
        assert_eq!(status(&store, 1).await, Some(RelayJobStatus::Released));
        // A settlement seen after the release (out-of-order delivery) cannot move it back.
        store.commit_range(&batch(5, 9, vec![settled(8, 1, b"x")])).await.unwrap();
        assert_eq!(status(&store, 1).await, Some(RelayJobStatus::Released));
    })
    .await;
}

#[tokio::test]
async fn rollback_rederives_jobs_from_the_remaining_events() {
    on_both("rollback", |store| async move {
        store
            .commit_range(&batch(1, 10, vec![created(3, 1, b"a"), settled(8, 1, b"out")]))
            .await
            .unwrap();
        assert_eq!(status(&store, 1).await, Some(RelayJobStatus::Settled));
        assert!(store.job_result(U256::from(1)).await.unwrap().is_some());

        // Blocks above 5 were replaced: the settlement is gone, the job is open again.
        assert_eq!(store.rollback_to(CHAIN, 5).await.unwrap(), vec![1]);
        assert_eq!(status(&store, 1).await, Some(RelayJobStatus::Open));
        assert!(store.job_result(U256::from(1)).await.unwrap().is_none());
        assert_eq!(store.cursor(CHAIN).await.unwrap(), Some(6));
        assert_eq!(store.stored_blocks().await.unwrap().first().map(|b| b.0), Some(3));

        // Above 2 as well: the job itself never happened.
        store.rollback_to(CHAIN, 2).await.unwrap();
        assert_eq!(status(&store, 1).await, None);
        assert_eq!(store.event_count().await.unwrap(), 0);

        // Replaying the new chain recreates job 1 with its new input.
        store.commit_range(&batch(3, 6, vec![created(4, 1, b"b")])).await.unwrap().unwrap();
        let view = store.job_view(U256::from(1)).await.unwrap().unwrap();
        assert_eq!(view.input_hash, keccak256(b"b"));
    })
    .await;
}

#[tokio::test]
async fn open_work_lists_open_unexpired_jobs_oldest_first() {
    on_both("open_work", |store| async move {
        let events = vec![created(2, 2, b"b"), created(3, 1, b"a"), created(4, 3, b"c")];
        store.commit_range(&batch(1, 4, events)).await.unwrap();
        store.commit_range(&batch(5, 6, vec![settled(6, 3, b"o")])).await.unwrap();
        let signer = Address::repeat_byte(9);
        let work = store.open_work(signer, 1_500, 10, 16_384).await.unwrap();
        let ids: Vec<U256> = work.iter().map(|w| w.job_id).collect();
        assert_eq!(ids, vec![U256::from(1), U256::from(2)]);
        assert_eq!(work[0].input_hash, keccak256(b"a"));
        assert_eq!(store.open_work(signer, 1_500, 1, 16_384).await.unwrap().len(), 1);
        // Past the deadline (2000) nothing is offered.
        assert!(store.open_work(signer, 2_001, 10, 16_384).await.unwrap().is_empty());
        let result = store.job_result(U256::from(3)).await.unwrap().unwrap();
        assert_eq!(result.output.as_ref(), b"o");
        assert_eq!(result.signers, vec![Address::repeat_byte(1), Address::repeat_byte(2)]);
        assert!(store.job_view(U256::MAX).await.unwrap().is_none());
    })
    .await;
}
