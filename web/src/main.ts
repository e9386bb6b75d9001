// The example dApp: pick a file, encode it as the magika model's input, upload it to a relayer,
// pay for the job, follow it to settlement (alone or in a batch), then show the answer and verify
// who attested it against the chain itself (never trusting the relayer, not even for the output of
// a batch-settled job, which is checked against the result hash the chain attests).
//
// Settings come from the form, pre-filled from the URL: ?rpc=&relayer=&model=&deployment=&fee=
// and, for a local devnet only, ?devKey= (a throwaway key; a real one never belongs in a URL).
import {
  AttestaClient,
  AttestaError,
  RelayClient,
  RevertError,
  decodeCanonical,
  encodeInput,
  inputHash,
  jobEscrowAbi,
  magikaInput,
  magikaLabels,
  parseDeployment,
  topLabel,
  type Deployment,
  type JobStatus,
} from "@attesta/sdk";
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  http,
  isHex,
  type Chain,
  type EIP1193Provider,
  type Hex,
  type PublicClient,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
};
const input = (id: string): HTMLInputElement => $<HTMLInputElement>(id);

const params = new URLSearchParams(location.search);
input("rpc").value = params.get("rpc") ?? "http://127.0.0.1:8545";
input("relayer").value = params.get("relayer") ?? "http://127.0.0.1:7545";
input("model").value = params.get("model") ?? "";
input("fee").value = params.get("fee") ?? "";
input("dev-key").value = params.get("devKey") ?? "";
$<HTMLTextAreaElement>("deployment").value = params.get("deployment") ?? "";
if (!params.get("devKey") && window.ethereum) input("wallet-injected").checked = true;

async function loadDeployment(text: string): Promise<Deployment> {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) return parseDeployment(trimmed, "the deployment field");
  if (!trimmed) throw new Error("paste the deployment JSON (deployments/<chainId>.json) or its URL");
  const response = await fetch(trimmed);
  if (!response.ok) throw new Error(`cannot fetch the deployment from ${trimmed}: ${response.status}`);
  return parseDeployment(await response.text(), trimmed);
}

async function labels(): Promise<string[]> {
  try {
    const response = await fetch("/magika-config.json");
    return response.ok ? magikaLabels(await response.text()) : [];
  } catch {
    return []; // Labels are only for display: without them the class index is shown.
  }
}

async function wallet(chain: Chain, rpc: string): Promise<WalletClient> {
  if (input("wallet-injected").checked) {
    if (!window.ethereum) throw new Error("no browser wallet found: install one, or use a local test key on a devnet");
    const injected = createWalletClient({ chain, transport: custom(window.ethereum) });
    const [account] = await injected.requestAddresses();
    if (!account) throw new Error("the wallet shared no account");
    await injected.switchChain({ id: chain.id }).catch(() => undefined);
    return createWalletClient({ account, chain, transport: custom(window.ethereum) });
  }
  const key = input("dev-key").value.trim();
  if (!isHex(key) || key.length !== 66) throw new Error("the local test key must be 0x followed by 64 hex digits");
  return createWalletClient({ account: privateKeyToAccount(key), chain, transport: http(rpc) });
}

const STEPS: JobStatus[] = ["Created", "Settled", "Released"];

function showStatus(status: string, attested: string): void {
  const b = $("status");
  b.textContent = status;
  b.dataset.status = status;
  $("attested").textContent = attested;
  const reached = STEPS.indexOf(status as JobStatus);
  for (const [i, li] of [...$("timeline").children].entries()) li.classList.toggle("done", reached >= i);
}

function fail(e: unknown): void {
  let message = e instanceof Error ? e.message : String(e);
  if (e instanceof RevertError) message = `${e.contract}.${e.errorName}: ${e.hint}`;
  else if (e instanceof AttestaError && e.retryable) message += " (a retry may help)";
  $("error").textContent = message;
}

async function run(file: File): Promise<void> {
  $("error").textContent = "";
  $("result").hidden = true;
  const rpc = input("rpc").value.trim();
  const relay = new RelayClient(input("relayer").value.trim());
  const deployment = await loadDeployment($<HTMLTextAreaElement>("deployment").value);
  const model = input("model").value.trim();
  if (!isHex(model) || model.length !== 66) throw new Error("the model id must be a 32-byte 0x-hex hash (the relayer's upload of the model)");
  const chain = defineChain({
    id: deployment.chainId,
    name: `chain ${deployment.chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpc] } },
  });
  const publicClient = createPublicClient({ chain, transport: http(rpc), pollingInterval: 500 }) as PublicClient;
  const client = new AttestaClient({ publicClient, walletClient: await wallet(chain, rpc), deployment });

  // 1. The file becomes magika's input tensor (ATI1 bytes); its hash is what the job commits to.
  const bytes = encodeInput(magikaInput(new Uint8Array(await file.arrayBuffer())));
  const hash = inputHash(bytes);
  // 2. Nodes fetch the input from the relayer by hash, and refuse bytes that do not match it.
  await relay.uploadBlob(bytes);
  if (!(await relay.hasBlob(model as Hex))) throw new Error(`the relayer does not hold model ${model}: upload it first (attesta models upload)`);
  // 3. Pay: approve the escrow if needed, then createJob with a deadline the escrow accepts.
  const config = await publicClient.readContract({ address: deployment.jobEscrow, abi: jobEscrowAbi, functionName: "config" });
  const fee = input("fee").value.trim() ? BigInt(input("fee").value.trim()) : config.minFee;
  const now = (await publicClient.getBlock()).timestamp;
  const deadline = now + BigInt(Math.min(Number(config.maxJobDuration), 600));
  $("timeline").replaceChildren(...STEPS.map((s) => Object.assign(document.createElement("li"), { textContent: s })));
  $("job").hidden = false;
  showStatus("submitting", "");
  const jobId = await client.createJob(model as Hex, hash, fee, deadline);
  $("job-id").textContent = jobId.toString();
  $("job").dataset.jobId = jobId.toString();

  // 4. Follow it: the chain says the state, the relayer how many nodes have answered so far.
  const names = await labels();
  let verified = false;
  for (;;) {
    const job = await client.job(jobId);
    const view = await relay.job(jobId).catch(() => undefined);
    const best = view?.attestations[0]?.signers ?? 0;
    showStatus(job.status, view ? `(${best} node${best === 1 ? "" : "s"} agree so far; relayer: ${view.status})` : "");
    if (job.status === "Settled" || job.status === "Released") {
      if (!verified) {
        await showResult(client, relay, jobId, names);
        verified = true;
      }
      if (job.status === "Released") return;
    }
    if (job.status === "Refunded" || job.status === "Overturned") return;
    if (job.status === "Created" && BigInt(Math.floor(Date.now() / 1000)) > job.deadline + 60n) {
      throw new Error(`job ${jobId} was not served before its deadline: refund it (client.refund)`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function showResult(client: AttestaClient, relay: RelayClient, jobId: bigint, names: string[]): Promise<void> {
  // Everything below comes from the chain: signatures recovered, signers active at the
  // settlement block, at least M of them, and the escrow's commitment. A job settled alone has
  // its output on chain (checked against the result hash); one settled in a batch has only its
  // result hash there (under the batch's signed Merkle root), so its output comes from the relayer.
  const { settlement, threshold } = await client.verifySettlement(jobId);
  // The relayer's copy must match what the chain attests (RelayClient.result checks it). The
  // relayer waits for confirmations, so it may see the settlement a few blocks after we do.
  let copy: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    copy = await relay.result(jobId, settlement.resultHash).catch((e: unknown) => e);
    if (copy !== undefined) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  let output = settlement.output;
  if (settlement.batch) {
    // Fetched again through RelayClient.output, which checks the bytes against the attested
    // result hash: the answer shown never rests on the relayer.
    const fetched = copy instanceof Error ? copy : await relay.output(settlement).catch((e: unknown) => e);
    if (fetched instanceof Error) throw new Error(`job ${jobId} settled in a batch, whose outputs are not on chain, and the relayer's copy does not check out: ${fetched.message}`);
    if (!fetched) throw new Error(`job ${jobId} settled in a batch, whose outputs are not on chain, and the relayer does not serve it yet: retry later or ask another relayer`);
    output = fetched as Hex;
  }
  const top = topLabel(decodeCanonical(output), names);
  $("label").textContent = top.label;
  $("score").textContent = `score ${top.score.toFixed(3)}`;
  const verified = $("verified");
  const how = settlement.batch
    ? `settled in a batch of ${settlement.batch.entries.length} (root ${settlement.batch.root.slice(0, 10)}…), the relayer's output matches result hash`
    : "output matches result hash";
  verified.textContent = `Verified on-chain: ${settlement.signers.length} signatures by active operators, threshold M = ${threshold}, ${how} ${settlement.resultHash.slice(0, 10)}…`;
  verified.className = "ok";
  verified.dataset.verified = "true";
  verified.dataset.batch = settlement.batch ? settlement.batch.root : "";
  $("signers").replaceChildren(...settlement.signers.map((s) => Object.assign(document.createElement("li"), { textContent: s })));
  $("relayer-copy").textContent =
    copy instanceof Error ? `The relayer's copy does not check out: ${copy.message}` : copy ? "The relayer's copy of the output matches." : "The relayer has not seen the settlement yet.";
  $("result").hidden = false;
}

$<HTMLFormElement>("job-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = input("file").files?.[0];
  if (!file) return fail(new Error("pick a file first"));
  const button = $<HTMLButtonElement>("submit");
  button.disabled = true;
  run(file)
    .catch(fail)
    .finally(() => {
      button.disabled = false;
    });
});
