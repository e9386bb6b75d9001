// A real anvil chain with Attesta deployed by the repository's own script/Deploy.s.sol, exactly as
// the Rust sdk's `testing::Devnet` does: funded accounts, minted tokens and staked operators.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  encodeFunctionData,
  http,
  keccak256,
  parseEther,
  toHex,
  webSocket,
  type Chain,
  type Hex,
  type LocalAccount,
  type PublicClient,
  type TestClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  AttestaClient,
  OperatorClient,
  loadDeployment,
  stakingRegistryAbi,
  testTokenAbi,
  type AttestaClientOptions,
  type Deployment,
} from "../../src/index.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
const run = promisify(execFile);

/** The runtime id the test deployments allow. */
export const TEST_RUNTIME_ID: Hex = keccak256(toHex("attesta/test-runtime/v1"));
/** anvil's first dev account: the deployer, admin and treasury. */
const ANVIL_KEY_0: Hex = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
export const ACCOUNTS = 80;

export function foundryBin(tool: string): string {
  const path = join(ROOT, "node_modules", "@foundry-rs", `${tool}-linux-amd64`, "bin", tool);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm ci\` at the repository root first`);
  return path;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function startAnvil(): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn(foundryBin("anvil"), ["--port", String(port), "--host", "127.0.0.1"], { stdio: ["ignore", "pipe", "pipe"] });
    const ok = await new Promise<boolean>((resolve) => {
      let out = "";
      const timer = setTimeout(() => resolve(false), 15_000);
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("Listening on")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.on("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ok) {
      child.stdout?.resume();
      child.stderr?.resume();
      return { child, port };
    }
    child.kill();
    if (attempt >= 2) throw new Error("anvil did not start");
  }
}

let deployCounter = 0;

/**
 * Runs `forge script script/Deploy.s.sol` against `rpcUrl`, serialised across processes (Rust
 * tests included) with the same lock file `sdk/src/testing.rs` uses, and reads what it wrote.
 */
export async function deploy(rpcUrl: string): Promise<Deployment> {
  const file = `test-ts-${process.pid}-${deployCounter++}.json`;
  mkdirSync(join(ROOT, "deployments"), { recursive: true });
  try {
    await run(
      "flock",
      [join(ROOT, "deployments", ".deploy.lock"), foundryBin("forge"), "script", "script/Deploy.s.sol", "--rpc-url", rpcUrl, "--broadcast", "-q", "--skip", "test"],
      {
        cwd: ROOT,
        env: { ...process.env, ATTESTA_DEPLOYMENT_FILE: file, ATTESTA_RUNTIME_IDS: TEST_RUNTIME_ID },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`forge script failed:\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
  }
  const path = join(ROOT, "deployments", file);
  try {
    return await loadDeployment(path);
  } finally {
    rmSync(path, { force: true });
  }
}

export interface TestOperator {
  account: LocalAccount;
  signer: LocalAccount;
}

export class Devnet {
  readonly chain: Chain;
  readonly publicClient: PublicClient;
  readonly testClient: TestClient;
  private readonly closers: (() => Promise<void>)[] = [];
  private constructor(
    readonly anvil: ChildProcess,
    readonly port: number,
    readonly deployment: Deployment,
  ) {
    this.chain = defineChain({
      id: deployment.chainId,
      name: "anvil",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [this.url], webSocket: [this.wsUrl] } },
    });
    this.publicClient = createPublicClient({ chain: this.chain, transport: http(this.url), pollingInterval: 50 });
    this.testClient = createTestClient({ chain: this.chain, mode: "anvil", transport: http(this.url) });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  static async spawn(): Promise<Devnet> {
    const { child, port } = await startAnvil();
    try {
      const deployment = await deploy(`http://127.0.0.1:${port}`);
      const devnet = new Devnet(child, port, deployment);
      for (let i = 1; i < ACCOUNTS; i++) {
        await devnet.testClient.setBalance({ address: devnet.key(i).address, value: parseEther("1000") });
      }
      return devnet;
    } catch (e) {
      child.kill();
      throw e;
    }
  }

  async stop(): Promise<void> {
    for (const close of this.closers.splice(0)) await close().catch(() => undefined);
    if (this.anvil.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      this.anvil.once("exit", () => resolve());
      this.anvil.kill();
    });
  }

  /** Test account `index` (0 is the deployer; others derive from fixed seeds, as in testing.rs). */
  key(index: number): LocalAccount {
    return privateKeyToAccount(index === 0 ? ANVIL_KEY_0 : keccak256(toHex(`attesta-test-account-${index}`)));
  }

  /** An AttestaClient sending from test account `index` (HTTP transport). */
  client(index: number, options: Partial<AttestaClientOptions> = {}): AttestaClient {
    const walletClient = createWalletClient({ account: this.key(index), chain: this.chain, transport: http(this.url) });
    return new AttestaClient({ publicClient: this.publicClient, walletClient, deployment: this.deployment, pollIntervalMs: 50, ...options });
  }

  /** A read-only AttestaClient over WebSocket (subscriptions). */
  wsClient(): AttestaClient {
    const publicClient = createPublicClient({ chain: this.chain, transport: webSocket(this.wsUrl, { reconnect: false, keepAlive: false }) });
    this.closers.push(async () => {
      const transport = publicClient.transport as unknown as { getRpcClient?: () => Promise<{ close: () => void }> };
      (await transport.getRpcClient?.())?.close();
    });
    return new AttestaClient({ publicClient, deployment: this.deployment, pollIntervalMs: 5_000 });
  }

  async mint(to: `0x${string}`, amount: bigint): Promise<void> {
    await this.client(0).send(this.deployment.token, encodeFunctionData({ abi: testTokenAbi, functionName: "mint", args: [to, amount] }));
  }

  async minStake(): Promise<bigint> {
    return this.publicClient.readContract({ address: this.deployment.stakingRegistry, abi: stakingRegistryAbi, functionName: "minStake" });
  }

  /**
   * Adds `n` operators with the minimum stake, each with its own signing key (accounts 1..=2n: odd
   * ones operate, even ones sign), through the registry ABI. They become active in order.
   */
  async addOperators(n: number): Promise<TestOperator[]> {
    const minStake = await this.minStake();
    const ops: TestOperator[] = [];
    for (let i = 0; i < n; i++) {
      const op = { account: this.key(1 + 2 * i), signer: this.key(2 + 2 * i) };
      await this.mint(op.account.address, minStake);
      const operator = this.operator(1 + 2 * i);
      await operator.stake(minStake);
      await operator.registerSigner(op.signer);
      ops.push(op);
    }
    return ops;
  }

  /** An OperatorClient sending from test account `index`. */
  operator(index: number): OperatorClient {
    const walletClient = createWalletClient({ account: this.key(index), chain: this.chain, transport: http(this.url) });
    return new OperatorClient({ publicClient: this.publicClient, walletClient, deployment: this.deployment, pollIntervalMs: 50 });
  }

  /** Moves the chain's clock forward by `seconds` and mines a block. */
  async advance(seconds: number): Promise<void> {
    await this.testClient.increaseTime({ seconds });
    await this.testClient.mine({ blocks: 1 });
  }

  /** The latest block's timestamp. */
  async now(): Promise<bigint> {
    return (await this.publicClient.getBlock()).timestamp;
  }
}
