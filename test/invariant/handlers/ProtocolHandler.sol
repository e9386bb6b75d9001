// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {JobEscrow} from "../../../contracts/JobEscrow.sol";
import {Slashing} from "../../../contracts/Slashing.sol";
import {StakingRegistry} from "../../../contracts/StakingRegistry.sol";
import {IJobEscrow} from "../../../contracts/interfaces/IJobEscrow.sol";
import {ISlashing} from "../../../contracts/interfaces/ISlashing.sol";
import {IStakingRegistry} from "../../../contracts/interfaces/IStakingRegistry.sol";
import {TestToken} from "../../../contracts/mocks/TestToken.sol";
import {BatchTree} from "../../utils/BatchTree.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {console} from "forge-std/console.sol";

/// @title ProtocolHandler
/// @notice Drives the real deployed StakingRegistry, JobEscrow and Slashing with bounded random actions from
/// several actors (operators with rotating keys, clients, challengers, reporters, a donor, the arbiter) and
/// keeps ghost variables that the invariant test compares with the contracts (solady WETH.t.sol style).
/// @dev Every action picks a target that can succeed (a job in the right state and time window, an operator
/// with something to withdraw...) and returns early when there is none, so the campaign spends its depth on
/// real state changes. An action whose contract call still reverts is undone as a whole, ghosts included.
/// The `step` modifier records, after every action, the facts that need the previous state: job status
/// only moving forward, terminal states never changing, `activeSetVersion` and the epoch never decreasing,
/// and owed amounts only falling through `claim`, by exactly what was paid.
contract ProtocolHandler is CommonBase, StdCheats, StdUtils {
    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    uint256 internal constant BPS = 10_000;
    /// @dev secp256k1 group order, to derive valid private keys.
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    /// @dev Bounds that keep the per-step bookkeeping loops short.
    uint256 public constant MAX_OPERATORS = 16;
    uint256 public constant MAX_JOBS = 48;

    bytes32 internal constant MODEL = keccak256("invariant model");
    bytes32 internal constant INPUT = keccak256("invariant input");

    /*//////////////////////////////////////////////////////////////
                               CONTRACTS
    //////////////////////////////////////////////////////////////*/

    TestToken public immutable token;
    StakingRegistry public immutable registry;
    JobEscrow public immutable escrow;
    Slashing public immutable slashing;
    address public immutable arbiter;
    address public immutable treasury;
    bytes32 public immutable runtimeId;
    /// @dev The escrow's windows (the handler never changes the configuration).
    uint256 internal immutable _challengeWindow;
    uint256 internal immutable _disputeTimeout;

    /*//////////////////////////////////////////////////////////////
                                ACTORS
    //////////////////////////////////////////////////////////////*/

    address[] public operators;
    address[] public clients;
    address[] public challengers;
    address[] public reporters;
    address public immutable donor;
    /// @notice Everyone the escrow can owe: operators, treasury, clients and challengers.
    address[] internal _payees;

    mapping(address signer => uint256 key) internal _keyOf;
    mapping(address operator => uint256[] keys) internal _keysOf;
    uint256 internal _keyNonce;

    /*//////////////////////////////////////////////////////////////
                                GHOSTS
    //////////////////////////////////////////////////////////////*/

    /// @notice The handler's clock; re-applied before every action.
    uint256 public currentTime;

    // Escrow.
    uint256 public ghostOpenFees; // fees of Created, Settled and Disputed jobs
    uint256 public ghostOpenBonds; // bonds of Disputed jobs
    uint256 public ghostOwed; // credited minus claimed
    uint256 public ghostEscrowDonations;
    mapping(uint256 jobId => uint256) public ghostPaid; // released or resolved in the signers' favour
    mapping(uint256 jobId => uint256) public ghostRefunded; // refunded, overturned or expired
    mapping(uint256 jobId => uint256) public ghostBond;
    mapping(uint256 jobId => bytes32) internal _resultOf;
    mapping(uint256 jobId => address[]) internal _signersOf;
    /// @dev Batches settled by `settleBatch`, by root: entries in settlement order, time of settlement.
    bytes32[] internal _roots;
    mapping(bytes32 root => IJobEscrow.BatchEntry[]) internal _batchEntries;
    mapping(bytes32 root => uint256) internal _batchSettledAt;
    mapping(uint256 jobId => uint8) public ghostPrevStatus;

    // Registry.
    uint256 public ghostTotalStaked;
    uint256 public ghostTotalUnbonding;
    uint256 public ghostTotalSlashed;
    uint256 public ghostRegistryDonations;
    mapping(address operator => uint256) public ghostDeposited;
    mapping(address operator => uint256) public ghostWithdrawn;
    mapping(address operator => uint256) public ghostSlashed;
    uint64 public ghostPrevActiveSetVersion;
    uint256 public ghostPrevEpoch;

    // Violations seen by `step` or by an action (the invariant test asserts they never happen).
    uint256 public ghostStatusRegressions;
    uint256 public ghostTerminalChanges;
    uint256 public ghostVersionDecreases;
    uint256 public ghostEpochDecreases;
    uint256 public ghostIllegalOwedDecreases;
    uint256 public ghostSlashMismatches;
    uint256 public ghostPaymentMismatches;

    /// @dev The one claim the current action made.
    address internal _claimer;
    uint256 internal _claimed;

    /*//////////////////////////////////////////////////////////////
                               COUNTERS
    //////////////////////////////////////////////////////////////*/

    /// @notice Successful actions, by name (see `callSummary`).
    mapping(string action => uint256) public calls;

    string[] internal _actionNames;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    constructor(
        TestToken token_,
        StakingRegistry registry_,
        JobEscrow escrow_,
        Slashing slashing_,
        address arbiter_,
        address treasury_,
        bytes32 runtimeId_
    ) {
        token = token_;
        registry = registry_;
        escrow = escrow_;
        slashing = slashing_;
        arbiter = arbiter_;
        treasury = treasury_;
        runtimeId = runtimeId_;
        IJobEscrow.Config memory config = escrow_.config();
        _challengeWindow = config.challengeWindow;
        _disputeTimeout = config.disputeTimeout;
        donor = makeAddr("donor");
        _payees.push(treasury_);
        for (uint256 i; i < 3; ++i) {
            address c = makeAddr(string.concat("client-", vm.toString(i)));
            clients.push(c);
            _payees.push(c);
        }
        for (uint256 i; i < 2; ++i) {
            address c = makeAddr(string.concat("challenger-", vm.toString(i)));
            challengers.push(c);
            _payees.push(c);
            reporters.push(makeAddr(string.concat("reporter-", vm.toString(i))));
        }
        currentTime = block.timestamp;
        ghostPrevActiveSetVersion = registry_.activeSetVersion();
        ghostPrevEpoch = slashing_.currentEpoch();
        string[24] memory names = [
            "joinOperator",
            "stake",
            "registerSigner",
            "requestUnstake",
            "withdraw",
            "deactivate",
            "activate",
            "createJob",
            "settle",
            "release",
            "settleBatch",
            "releaseBatch",
            "challengeBatched",
            "refund",
            "challenge",
            "resolveStands",
            "resolveOverturned",
            "expireDispute",
            "claim",
            "slashEquivocation",
            "slashDowntime",
            "warp",
            "donateToEscrow",
            "donateToRegistry"
        ];
        for (uint256 i; i < names.length; ++i) {
            _actionNames.push(names[i]);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 STEP
    //////////////////////////////////////////////////////////////*/

    modifier step() {
        vm.warp(currentTime);
        _claimer = address(0);
        _claimed = 0;
        uint256[] memory owedBefore = _owedSnapshot();
        _;
        _checkTransitions(owedBefore);
    }

    /// @dev Kept in memory, not storage: the snapshot is taken on every call of the campaign.
    function _owedSnapshot() internal view returns (uint256[] memory owed) {
        owed = new uint256[](_payees.length);
        for (uint256 i; i < owed.length; ++i) {
            owed[i] = escrow.owed(_payees[i]);
        }
    }

    function _checkTransitions(uint256[] memory owedBefore) internal {
        // Owed amounts only fall through claim, by exactly what the claim paid. New payees (operators that
        // joined in this action) have no snapshot and start at zero.
        for (uint256 i; i < owedBefore.length; ++i) {
            uint256 afterOwed = escrow.owed(_payees[i]);
            if (afterOwed < owedBefore[i]) {
                if (_payees[i] != _claimer || owedBefore[i] - afterOwed != _claimed) {
                    ++ghostIllegalOwedDecreases;
                }
            }
        }
        // Job status only moves forward and terminal states never change.
        uint256 n = escrow.jobCount();
        for (uint256 id = 1; id <= n; ++id) {
            uint8 status = uint8(escrow.job(id).status);
            uint8 prev = ghostPrevStatus[id];
            if (status < prev) ++ghostStatusRegressions;
            if (prev >= uint8(IJobEscrow.JobStatus.Released) && status != prev) ++ghostTerminalChanges;
            if (status != prev) ghostPrevStatus[id] = status;
        }
        uint64 version = registry.activeSetVersion();
        if (version < ghostPrevActiveSetVersion) ++ghostVersionDecreases;
        if (version != ghostPrevActiveSetVersion) ghostPrevActiveSetVersion = version;
        uint256 epoch = slashing.currentEpoch();
        if (epoch < ghostPrevEpoch) ++ghostEpochDecreases;
        if (epoch != ghostPrevEpoch) ghostPrevEpoch = epoch;
    }

    /*//////////////////////////////////////////////////////////////
                               OPERATORS
    //////////////////////////////////////////////////////////////*/

    /// @notice A new operator stakes at least the minimum and registers a key (joins if there is room).
    function joinOperator(uint256 amountSeed) external step {
        if (operators.length >= MAX_OPERATORS) return;
        address op = makeAddr(string.concat("operator-", vm.toString(operators.length)));
        operators.push(op);
        _payees.push(op);
        uint256 minStake = registry.minStake();
        _stake(op, _bound(amountSeed, minStake, 3 * minStake));
        _registerNewKey(op);
        ++calls["joinOperator"];
    }

    function stake(uint256 opSeed, uint256 amountSeed) external step {
        if (operators.length == 0) return;
        address op = operators[opSeed % operators.length];
        _stake(op, _bound(amountSeed, 1, 2 * registry.minStake()));
        ++calls["stake"];
    }

    /// @notice Rotates the operator's key (the old key leaves the active set, the new one takes its place).
    function registerSigner(uint256 opSeed) external step {
        if (operators.length == 0) return;
        _registerNewKey(operators[opSeed % operators.length]);
        ++calls["registerSigner"];
    }

    function requestUnstake(uint256 opSeed, uint256 amountSeed) external step {
        if (operators.length == 0) return;
        address op = operators[opSeed % operators.length];
        uint256 staked = registry.operator(op).stake;
        if (staked == 0) return;
        uint256 amount = _bound(amountSeed, 1, staked);
        vm.prank(op);
        registry.requestUnstake(amount);
        ghostTotalStaked -= amount;
        ghostTotalUnbonding += amount;
        ++calls["requestUnstake"];
    }

    function withdraw(uint256 opSeed) external step {
        if (operators.length == 0) return;
        address op = operators[opSeed % operators.length];
        IStakingRegistry.Operator memory o = registry.operator(op);
        if (o.unbonding == 0 || currentTime < o.unbondingEnd) return;
        uint256 balanceBefore = token.balanceOf(op);
        vm.prank(op);
        uint256 amount = registry.withdraw();
        if (amount != o.unbonding || token.balanceOf(op) - balanceBefore != amount) ++ghostPaymentMismatches;
        ghostWithdrawn[op] += amount;
        ghostTotalUnbonding -= amount;
        ++calls["withdraw"];
    }

    /// @notice An active operator leaves the set voluntarily; an inactive one that qualifies joins again.
    function toggleActive(uint256 opSeed) external step {
        if (operators.length == 0) return;
        address op = operators[opSeed % operators.length];
        IStakingRegistry.Operator memory o = registry.operator(op);
        if (o.active) {
            vm.prank(op);
            registry.deactivate();
            ++calls["deactivate"];
            return;
        }
        if (o.jailed || o.signer == address(0) || o.stake < registry.minStake()) return;
        if (registry.activeCount() >= registry.maxActive()) return;
        vm.prank(op);
        registry.activate();
        ++calls["activate"];
    }

    /*//////////////////////////////////////////////////////////////
                                 JOBS
    //////////////////////////////////////////////////////////////*/

    function createJob(uint256 clientSeed, uint256 feeSeed, uint256 durationSeed) external step {
        if (escrow.jobCount() >= MAX_JOBS) return;
        IJobEscrow.Config memory c = escrow.config();
        address client = clients[clientSeed % clients.length];
        uint256 fee = _bound(feeSeed, c.minFee, 50 ether);
        uint256 deadline = currentTime + _bound(durationSeed, c.minJobDuration, c.maxJobDuration);
        token.mint(client, fee);
        vm.startPrank(client);
        token.approve(address(escrow), fee);
        escrow.createJob(MODEL, INPUT, fee, deadline);
        vm.stopPrank();
        ghostOpenFees += fee;
        ++calls["createJob"];
    }

    /// @notice Settles a Created job before its deadline with a random quorum (M..N) of the active signers.
    function settle(uint256 jobSeed, uint256 quorumSeed, uint256 resultSeed) external step {
        uint256 jobId = _findJob(jobSeed, _settleable);
        if (jobId == 0) return;
        (uint256[] memory keys, address[] memory signers) = _quorum(quorumSeed);
        if (keys.length == 0) return;
        bytes memory output = abi.encodePacked("attesta invariant output ", resultSeed % 3);
        bytes32 resultHash = keccak256(output);
        bytes32 digest = escrow.hashAttestation(_attestation(jobId, resultHash));
        escrow.settle(jobId, runtimeId, resultHash, output, _pack(keys, digest));
        _resultOf[jobId] = resultHash;
        _signersOf[jobId] = signers;
        ++calls["settle"];
    }

    function release(uint256 jobSeed) external step {
        uint256 jobId = _findJob(jobSeed, _releasable);
        if (jobId == 0) return;
        uint256 fee = escrow.job(jobId).fee;
        escrow.release(jobId, _resultOf[jobId], _signersOf[jobId]);
        ghostOpenFees -= fee;
        ghostOwed += fee;
        ++ghostPaid[jobId];
        ++calls["release"];
    }

    /// @notice Settles up to 8 settleable jobs in one batch with a random quorum and random results.
    function settleBatch(uint256 jobSeed, uint256 quorumSeed, uint256 resultSeed, uint256 sizeSeed)
        external
        step
    {
        (uint256[] memory keys, address[] memory signers) = _quorum(quorumSeed);
        if (keys.length == 0) return;
        uint256 n = escrow.jobCount();
        uint256 want = _bound(sizeSeed, 1, 8);
        IJobEscrow.BatchEntry[] memory found = new IJobEscrow.BatchEntry[](want);
        uint256 count;
        for (uint256 i; i < n && count < want; ++i) {
            uint256 id = (jobSeed % n + i) % n + 1;
            if (!_settleable(escrow.job(id))) continue;
            found[count++] = IJobEscrow.BatchEntry(
                id, keccak256(abi.encodePacked("attesta invariant output ", (resultSeed % 3 + id) % 3))
            );
        }
        if (count == 0) return;
        IJobEscrow.BatchEntry[] memory entries = new IJobEscrow.BatchEntry[](count);
        for (uint256 k; k < count; ++k) {
            entries[k] = found[k];
        }
        BatchTree.sort(entries);
        bytes32 root = BatchTree.root(entries);
        escrow.settleBatch(runtimeId, entries, _pack(keys, escrow.hashBatchAttestation(root, runtimeId)));
        for (uint256 k; k < count; ++k) {
            _resultOf[entries[k].jobId] = entries[k].resultHash;
            _signersOf[entries[k].jobId] = signers;
            _batchEntries[root].push(entries[k]);
        }
        _roots.push(root);
        _batchSettledAt[root] = currentTime;
        ++calls["settleBatch"];
    }

    /// @dev A settled batch, from a random start, with a job still batch-settled (reported Settled) and
    /// whose challenge window is over (`due`) or open (`!due`); 0 if none.
    function _findBatch(uint256 seed, bool due) internal view returns (bytes32) {
        uint256 n = _roots.length;
        for (uint256 i; i < n; ++i) {
            bytes32 root = _roots[(seed % n + i) % n];
            bool over = currentTime >= _batchSettledAt[root] + _challengeWindow;
            if (over != due) continue;
            IJobEscrow.BatchEntry[] storage e = _batchEntries[root];
            for (uint256 k; k < e.length; ++k) {
                if (escrow.job(e[k].jobId).status == IJobEscrow.JobStatus.Settled) return root;
            }
        }
        return 0;
    }

    /// @notice Releases a whole settled batch after its window: its jobs not challenged are paid once.
    function releaseBatch(uint256 batchSeed) external step {
        if (_roots.length == 0) return;
        bytes32 root = _findBatch(batchSeed, true);
        if (root == 0) return;
        IJobEscrow.BatchEntry[] memory entries = _batchEntries[root];
        uint256 fees;
        for (uint256 k; k < entries.length; ++k) {
            IJobEscrow.Job memory j = escrow.job(entries[k].jobId);
            if (j.status != IJobEscrow.JobStatus.Settled) continue; // challenged: its dispute decides
            fees += j.fee;
            ++ghostPaid[entries[k].jobId];
        }
        escrow.releaseBatch(entries, _signersOf[entries[0].jobId]);
        ghostOpenFees -= fees;
        ghostOwed += fees;
        ++calls["releaseBatch"];
    }

    /// @notice Challenges one batch-settled job within its batch's window, with its Merkle proof.
    function challengeBatched(uint256 batchSeed, uint256 entrySeed, uint256 challengerSeed) external step {
        if (_roots.length == 0) return;
        bytes32 root = _findBatch(batchSeed, false);
        if (root == 0) return;
        IJobEscrow.BatchEntry[] memory entries = _batchEntries[root];
        uint256 k = entrySeed % entries.length;
        while (escrow.job(entries[k].jobId).status != IJobEscrow.JobStatus.Settled) {
            k = (k + 1) % entries.length;
        }
        address who = challengers[challengerSeed % challengers.length];
        uint256 bond = escrow.config().challengeBond;
        token.mint(who, bond);
        vm.startPrank(who);
        token.approve(address(escrow), bond);
        escrow.challengeBatched(
            entries[k].jobId, root, entries[k].resultHash, BatchTree.proof(BatchTree.tree(entries), k)
        );
        vm.stopPrank();
        ghostOpenBonds += bond;
        ghostBond[entries[k].jobId] = bond;
        ++calls["challengeBatched"];
    }

    /// @notice Anyone refunds an unsettled job after its deadline; the fee goes straight to the client.
    function refund(uint256 jobSeed) external step {
        uint256 jobId = _findJob(jobSeed, _refundable);
        if (jobId == 0) return;
        IJobEscrow.Job memory j = escrow.job(jobId);
        uint256 balanceBefore = token.balanceOf(j.client);
        escrow.refund(jobId);
        if (token.balanceOf(j.client) - balanceBefore != j.fee) ++ghostPaymentMismatches;
        ghostOpenFees -= j.fee;
        ++ghostRefunded[jobId];
        ++calls["refund"];
    }

    function challenge(uint256 jobSeed, uint256 challengerSeed) external step {
        uint256 jobId = _findJob(jobSeed, _challengeable);
        if (jobId == 0) return;
        address who = challengers[challengerSeed % challengers.length];
        uint256 bond = escrow.config().challengeBond;
        token.mint(who, bond);
        vm.startPrank(who);
        token.approve(address(escrow), bond);
        escrow.challenge(jobId);
        vm.stopPrank();
        ghostOpenBonds += bond;
        ghostBond[jobId] = bond;
        ++calls["challenge"];
    }

    /// @notice The arbiter's verdict; an overturned result slashes every signer's operator.
    function resolveDispute(uint256 jobSeed, uint256 verdictSeed) external step {
        uint256 jobId = _findJob(jobSeed, _resolvable);
        if (jobId == 0) return;
        uint256 fee = escrow.job(jobId).fee;
        bool stands = verdictSeed % 2 == 0;
        address[] memory signers = _signersOf[jobId];
        if (stands) {
            vm.prank(arbiter);
            escrow.resolveDispute(jobId, true, _resultOf[jobId], signers);
            ++ghostPaid[jobId];
            ++calls["resolveStands"];
        } else {
            address[] memory ops = registry.operatorsOf(signers);
            uint16 bps = slashing.penalties().overturnedBps;
            IStakingRegistry.Operator[] memory before = new IStakingRegistry.Operator[](ops.length);
            uint256[] memory expected = new uint256[](ops.length);
            for (uint256 i; i < ops.length; ++i) {
                before[i] = registry.operator(ops[i]);
                expected[i] = (uint256(before[i].stake) + before[i].unbonding) * bps / BPS;
            }
            vm.prank(arbiter);
            escrow.resolveDispute(jobId, false, _resultOf[jobId], signers);
            for (uint256 i; i < ops.length; ++i) {
                _recordSlash(ops[i], before[i], expected[i]);
            }
            ++ghostRefunded[jobId];
            ++calls["resolveOverturned"];
        }
        ghostOpenFees -= fee;
        ghostOpenBonds -= ghostBond[jobId];
        ghostOwed += fee + ghostBond[jobId];
    }

    /// @notice Nobody resolved in time: the client and the challenger are credited back, nobody is slashed.
    function expireDispute(uint256 jobSeed) external step {
        uint256 jobId = _findJob(jobSeed, _expirable);
        if (jobId == 0) return;
        uint256 fee = escrow.job(jobId).fee;
        uint256 slashedBefore = registry.totalSlashed();
        escrow.expireDispute(jobId);
        if (registry.totalSlashed() != slashedBefore) ++ghostSlashMismatches;
        ghostOpenFees -= fee;
        ghostOpenBonds -= ghostBond[jobId];
        ghostOwed += fee + ghostBond[jobId];
        ++ghostRefunded[jobId];
        ++calls["expireDispute"];
    }

    function claim(uint256 payeeSeed) external step {
        uint256 n = _payees.length;
        uint256 start = payeeSeed % n;
        for (uint256 i; i < n; ++i) {
            address who = _payees[(start + i) % n];
            uint256 owed = escrow.owed(who);
            if (owed == 0) continue;
            uint256 balanceBefore = token.balanceOf(who);
            vm.prank(who);
            uint256 amount = escrow.claim();
            if (amount != owed || token.balanceOf(who) - balanceBefore != amount) ++ghostPaymentMismatches;
            ghostOwed -= amount;
            _claimer = who;
            _claimed = amount;
            ++calls["claim"];
            return;
        }
    }

    /*//////////////////////////////////////////////////////////////
                               SLASHING
    //////////////////////////////////////////////////////////////*/

    /// @notice A reporter proves that one of an operator's keys (current or rotated out) signed two results
    /// for one job: a real pair of conflicting attestations.
    function slashEquivocation(uint256 opSeed, uint256 keySeed, uint256 jobSeed, uint256 reporterSeed)
        external
        step
    {
        // Proven fraud jails the operator for good: one call in three goes ahead, so the active set is not
        // emptied early in a run and settlement keeps being exercised.
        if (operators.length == 0 || reporterSeed % 3 != 0) return;
        address op = operators[opSeed % operators.length];
        uint256[] storage keys = _keysOf[op];
        if (keys.length == 0) return;
        uint256 key = keys[keySeed % keys.length];
        uint256 jobId = 1 + jobSeed % (escrow.jobCount() + 1); // may be a job that does not exist yet
        if (slashing.isSlashed(slashing.offenceId(slashing.OFFENCE_EQUIVOCATION(), op, bytes32(jobId)))) {
            return;
        }

        IJobEscrow.Attestation memory a = _attestation(jobId, keccak256(abi.encode("result a", jobSeed)));
        IJobEscrow.Attestation memory b = _attestation(jobId, keccak256(abi.encode("result b", jobSeed)));
        bytes memory sigA = _sign(key, escrow.hashAttestation(a));
        bytes memory sigB = _sign(key, escrow.hashAttestation(b));
        address who = reporters[(reporterSeed / 3) % reporters.length];

        IStakingRegistry.Operator memory before = registry.operator(op);
        ISlashing.Penalties memory p = slashing.penalties();
        uint256 expected = (uint256(before.stake) + before.unbonding) * p.equivocationBps / BPS;
        uint256 reporterBefore = token.balanceOf(who);
        vm.prank(who);
        uint256 amount = slashing.slashEquivocation(a, sigA, b, sigB);
        if (amount != expected) ++ghostSlashMismatches;
        if (token.balanceOf(who) - reporterBefore != amount * p.reporterBountyBps / BPS) {
            ++ghostPaymentMismatches;
        }
        if (!registry.operator(op).jailed) ++ghostSlashMismatches;
        _recordSlash(op, before, expected);
        ++calls["slashEquivocation"];
    }

    /// @notice M of the active signers report an operator's downtime in one of the last two finished epochs.
    function slashDowntime(uint256 opSeed, uint256 epochSeed, uint256 quorumSeed) external step {
        // Every report takes an operator out of the set: one call in two goes ahead (as for equivocation).
        if (operators.length == 0 || epochSeed % 4 >= 2) return;
        address op = operators[opSeed % operators.length];
        // forge-lint: disable-next-line(unsafe-typecast) timestamps / epoch lengths are far below 2^64
        uint64 epoch = uint64(slashing.currentEpoch() - 1 - epochSeed % 2);
        if (slashing.isSlashed(slashing.offenceId(slashing.OFFENCE_DOWNTIME(), op, bytes32(uint256(epoch))))) return;
        (uint256[] memory keys,) = _quorum(quorumSeed);
        if (keys.length == 0) return;
        bytes memory sigs = _pack(keys, slashing.downtimeDigest(op, epoch));

        IStakingRegistry.Operator memory before = registry.operator(op);
        uint256 expected = (uint256(before.stake) + before.unbonding) * slashing.penalties().downtimeBps / BPS;
        uint256 amount = slashing.slashDowntime(op, epoch, sigs);
        if (amount != expected) ++ghostSlashMismatches;
        IStakingRegistry.Operator memory afterSlash = registry.operator(op);
        if (afterSlash.active || afterSlash.jailed != before.jailed) ++ghostSlashMismatches;
        _recordSlash(op, before, expected);
        ++calls["slashDowntime"];
    }

    /*//////////////////////////////////////////////////////////////
                            TIME, DONATIONS
    //////////////////////////////////////////////////////////////*/

    function warp(uint256 secondsSeed) external step {
        currentTime += _bound(secondsSeed, 1 minutes, 2 days);
        vm.warp(currentTime);
        ++calls["warp"];
    }

    /// @notice RELIABILITY C14: tokens sent straight to the escrow or the registry, outside any accounting.
    function donate(uint256 whereSeed, uint256 amountSeed) external step {
        uint256 amount = _bound(amountSeed, 1, 100 ether);
        address to = whereSeed % 2 == 0 ? address(escrow) : address(registry);
        token.mint(donor, amount);
        vm.prank(donor);
        bool ok = token.transfer(to, amount);
        if (!ok) ++ghostPaymentMismatches;
        if (to == address(escrow)) {
            ghostEscrowDonations += amount;
            ++calls["donateToEscrow"];
        } else {
            ghostRegistryDonations += amount;
            ++calls["donateToRegistry"];
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function operatorCount() external view returns (uint256) {
        return operators.length;
    }

    function payees() external view returns (address[] memory) {
        return _payees;
    }

    function signersOf(uint256 jobId) external view returns (address[] memory) {
        return _signersOf[jobId];
    }

    /// @notice Every action name with its count of successful calls.
    function actionNames() external view returns (string[] memory) {
        return _actionNames;
    }

    /// @notice Logs how often each action succeeded (shown with `-vv`).
    function callSummary() external view {
        console.log("ProtocolHandler call summary (successful actions):");
        for (uint256 i; i < _actionNames.length; ++i) {
            console.log(_actionNames[i], calls[_actionNames[i]]);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _stake(address op, uint256 amount) internal {
        token.mint(op, amount);
        vm.startPrank(op);
        token.approve(address(registry), amount);
        registry.stake(amount);
        vm.stopPrank();
        ghostDeposited[op] += amount;
        ghostTotalStaked += amount;
    }

    function _registerNewKey(address op) internal {
        uint256 key =
            uint256(keccak256(abi.encode("attesta invariant signer", ++_keyNonce))) % (SECP256K1_N - 1) + 1;
        address signer = vm.addr(key);
        bytes memory proof = _sign(key, registry.signerProofDigest(op, signer));
        vm.prank(op);
        registry.registerSigner(signer, proof);
        _keyOf[signer] = key;
        _keysOf[op].push(key);
    }

    /// @dev Books a slash the handler predicted from the operator's position before it: from stake first,
    /// then from unbonding; checks the registry took exactly that.
    function _recordSlash(address op, IStakingRegistry.Operator memory before, uint256 amount) internal {
        uint256 fromStake = amount < before.stake ? amount : before.stake;
        uint256 fromUnbonding = amount - fromStake;
        IStakingRegistry.Operator memory current = registry.operator(op);
        if (
            current.stake != before.stake - fromStake || current.unbonding != before.unbonding - fromUnbonding
        ) {
            ++ghostSlashMismatches;
        }
        ghostTotalStaked -= fromStake;
        ghostTotalUnbonding -= fromUnbonding;
        ghostSlashed[op] += amount;
        ghostTotalSlashed += amount;
    }

    function _attestation(uint256 jobId, bytes32 resultHash)
        internal
        view
        returns (IJobEscrow.Attestation memory)
    {
        return IJobEscrow.Attestation({
            jobId: jobId, modelId: MODEL, inputHash: INPUT, resultHash: resultHash, runtimeId: runtimeId
        });
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _pack(uint256[] memory keys, bytes32 digest) internal pure returns (bytes memory sigs) {
        for (uint256 i; i < keys.length; ++i) {
            sigs = bytes.concat(sigs, _sign(keys[i], digest));
        }
    }

    /// @dev A random quorum of the current active set: between M and N signers, sorted ascending by address,
    /// with their keys. Empty if the active set cannot reach the threshold.
    function _quorum(uint256 seed) internal view returns (uint256[] memory keys, address[] memory signers) {
        address[] memory active = registry.activeSigners();
        uint256 n = active.length;
        uint256 m = registry.threshold();
        if (n == 0 || n < m) return (keys, signers);
        uint256 k = _bound(seed, m, n);
        // Partial Fisher-Yates: the first k entries become a random k-subset.
        for (uint256 i; i < k; ++i) {
            uint256 j = i + uint256(keccak256(abi.encode(seed, i))) % (n - i);
            (active[i], active[j]) = (active[j], active[i]);
        }
        signers = new address[](k);
        for (uint256 i; i < k; ++i) {
            signers[i] = active[i];
        }
        // Insertion sort by address (k <= 64).
        for (uint256 i = 1; i < k; ++i) {
            address x = signers[i];
            uint256 j = i;
            while (j > 0 && signers[j - 1] > x) {
                signers[j] = signers[j - 1];
                --j;
            }
            signers[j] = x;
        }
        keys = new uint256[](k);
        for (uint256 i; i < k; ++i) {
            keys[i] = _keyOf[signers[i]];
        }
    }

    /// @dev The first job, from a random start, that `ok` accepts; 0 if none.
    function _findJob(uint256 seed, function(IJobEscrow.Job memory) internal view returns (bool) ok)
        internal
        view
        returns (uint256)
    {
        uint256 n = escrow.jobCount();
        if (n == 0) return 0;
        uint256 start = seed % n;
        for (uint256 i; i < n; ++i) {
            uint256 id = (start + i) % n + 1;
            if (ok(escrow.job(id))) return id;
        }
        return 0;
    }

    function _settleable(IJobEscrow.Job memory j) internal view returns (bool) {
        return j.status == IJobEscrow.JobStatus.Created && currentTime <= j.deadline;
    }

    function _refundable(IJobEscrow.Job memory j) internal view returns (bool) {
        return j.status == IJobEscrow.JobStatus.Created && currentTime > j.deadline;
    }

    // Settled with updatedAt 0 is a batch-settled job: released and challenged through its batch.
    function _releasable(IJobEscrow.Job memory j) internal view returns (bool) {
        return j.status == IJobEscrow.JobStatus.Settled && j.updatedAt != 0
            && currentTime >= uint256(j.updatedAt) + _challengeWindow;
    }

    function _challengeable(IJobEscrow.Job memory j) internal view returns (bool) {
        return j.status == IJobEscrow.JobStatus.Settled && j.updatedAt != 0
            && currentTime < uint256(j.updatedAt) + _challengeWindow;
    }

    function _resolvable(IJobEscrow.Job memory j) internal view returns (bool) {
        return
            j.status == IJobEscrow.JobStatus.Disputed && currentTime < uint256(j.updatedAt) + _disputeTimeout;
    }

    function _expirable(IJobEscrow.Job memory j) internal view returns (bool) {
        return
            j.status == IJobEscrow.JobStatus.Disputed && currentTime >= uint256(j.updatedAt) + _disputeTimeout;
    }
}
