//! The sandbox escape suite (RELIABILITY.md S1–S11), shared by `tests/escape.rs` (cold
//! workers) and `tests/escape_pooled.rs` (prepared workers of a pool): hostile payloads run
//! inside the real sandbox through the same entry path as a job (`super::run_job`, then
//! `attesta-node __worker`). Each must be stopped with the expected error, the parent keeps
//! running, and the next honest job succeeds.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use attesta_node::sandbox::{
    JobOutput, LandlockAbi, Limits, MIN_LANDLOCK_ABI, Policy, SandboxError, SkipLayers, probe,
    seccomp,
};

use super::run_job;

/// The Landlock ABIs every file-system case runs under: the oldest the node supports and the
/// newest the kernel offers.
fn abis() -> Vec<Option<LandlockAbi>> {
    vec![Some(MIN_LANDLOCK_ABI), None]
}

/// A job directory: a payload "model" and a scratch dir, plus an outside dir holding a fake
/// keystore the job must never reach.
pub(crate) struct Job {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) model: PathBuf,
    pub(crate) scratch: PathBuf,
    pub(crate) outside: PathBuf,
}

impl Job {
    pub(crate) fn new(spec: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.onnx");
        std::fs::write(&model, format!("ATTESTA-ESCAPE:{spec}")).unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keystore.json"), "{\"crypto\":\"secret key material\"}")
            .unwrap();
        Self { dir, model, scratch, outside }
    }

    pub(crate) fn policy(&self) -> Policy {
        Policy::new(&self.model, &self.scratch).with_worker(env!("CARGO_BIN_EXE_attesta-node"))
    }

    pub(crate) fn run(&self, input: &[u8]) -> Result<JobOutput, SandboxError> {
        run_job(&self.policy(), input)
    }

    fn run_with(
        &self,
        abi: Option<LandlockAbi>,
        limits: Limits,
    ) -> Result<JobOutput, SandboxError> {
        let mut policy = self.policy().with_limits(limits);
        policy.max_landlock_abi = abi;
        run_job(&policy, b"")
    }
}

/// Payload specs refer to paths of the job itself; `{outside}` etc. are filled in here.
pub(crate) fn spec_for(template: &str, job_dir: &Path) -> String {
    template
        .replace("{outside}", &job_dir.join("outside").display().to_string())
        .replace("{scratch}", &job_dir.join("scratch").display().to_string())
}

/// Runs `template` as a payload (paths filled in), under the given ABI cap and limits.
pub(crate) fn hostile(
    template: &str,
    abi: Option<LandlockAbi>,
    limits: Limits,
) -> (Job, Result<JobOutput, SandboxError>) {
    // Create the dir first so the spec can name its paths, then rewrite the model.
    let job = Job::new("placeholder");
    let spec = spec_for(template, job.dir.path());
    std::fs::write(&job.model, format!("ATTESTA-ESCAPE:{spec}")).unwrap();
    let result = job.run_with(abi, limits);
    (job, result)
}

/// Runs `template` (paths filled in) with default limits and the `skip` layers switched off.
fn hostile_without(template: &str, skip: SkipLayers) -> (Job, Result<JobOutput, SandboxError>) {
    let job = Job::new("placeholder");
    let spec = spec_for(template, job.dir.path());
    std::fs::write(&job.model, format!("ATTESTA-ESCAPE:{spec}")).unwrap();
    let mut policy = job.policy();
    policy.skip_layers = skip;
    let result = run_job(&policy, b"");
    (job, result)
}

/// After every hostile payload: the parent is alive (we are running) and an honest job works.
pub(crate) fn honest_job_succeeds() {
    let job = Job::new("echo");
    let out = job.run(b"honest input").unwrap();
    assert_eq!(out.canonical, b"honest input");
}

fn assert_denied(result: &Result<JobOutput, SandboxError>, what: &str) {
    match result {
        Err(SandboxError::Job { message }) if message.starts_with("denied:") => {}
        Err(SandboxError::SeccompViolation) => {}
        other => panic!("{what}: expected a denial, got {other:?}"),
    }
}

pub(crate) fn assert_landlock_denied(result: &Result<JobOutput, SandboxError>, what: &str) {
    match result {
        Err(SandboxError::Job { message }) if message.contains("Permission denied") => {}
        // Landlock refuses to move a file to another directory ("refer") with EXDEV.
        Err(SandboxError::Job { message }) if message.contains("cross-device link") => {}
        other => panic!("{what}: expected a Landlock denial (EACCES or EXDEV), got {other:?}"),
    }
}

#[test]
fn kernel_offers_every_sandbox_feature() {
    let report = probe();
    assert!(report.missing().is_empty(), "{report:?}");
    assert!(report.landlock_abi >= 1);
}

#[test]
fn honest_payload_runs_and_scratch_is_writable() {
    honest_job_succeeds();
    for abi in abis() {
        let (job, result) = hostile("scratch {scratch}/out.bin", abi, Limits::default());
        let _ = job;
        // The payload writes then reads back its input: empty input, empty output, no error.
        assert_eq!(result.unwrap().canonical, b"");
    }
}

// S1: connect out or to host loopback → refused.
#[test]
fn s1_connect_to_host_loopback_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (_job, result) = hostile(&format!("connect {port}"), None, Limits::default());
    assert!(matches!(result, Err(SandboxError::SeccompViolation)), "{result:?}");
    assert!(listener.accept().is_err(), "something connected to the host listener");
    let (_job, result) = hostile("resolve example.com", None, Limits::default());
    assert_denied(&result, "resolve a host name");
    honest_job_succeeds();
}

// S1, layer by layer: the seccomp filter (no `socket`) answers first above, so switch it off and
// check that the network namespace alone (loopback down, no route) and Landlock's TCP rules alone
// (ABI >= 4) each refuse the connection too.
#[test]
fn s1_network_namespace_and_landlock_each_refuse_alone() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("connect {port}");
    let netns_only = SkipLayers { landlock: true, seccomp: true, ..SkipLayers::default() };
    let (_job, result) = hostile_without(&connect, netns_only);
    assert!(
        matches!(&result, Err(SandboxError::Job { message })
            if message.starts_with("denied:") && message.contains("unreachable")),
        "network namespace alone: {result:?}"
    );
    let abi = probe().landlock_abi;
    if abi >= 4 {
        let landlock_only = SkipLayers { namespaces: true, seccomp: true, ..SkipLayers::default() };
        let (_job, result) = hostile_without(&connect, landlock_only);
        assert_landlock_denied(&result, "connect under Landlock alone");
    } else {
        eprintln!("Landlock ABI {abi} has no TCP rules (ABI >= 4): that layer is not checked here");
    }
    assert!(listener.accept().is_err(), "something connected to the host listener");
    // Control: with all three layers off the same payload connects, so each refusal above is the
    // layer's own.
    let none = SkipLayers { namespaces: true, landlock: true, seccomp: true };
    let (_job, result) = hostile_without(&connect, none);
    let out = result.unwrap();
    assert!(out.canonical.starts_with(b"ESCAPED"), "{:?}", String::from_utf8_lossy(&out.canonical));
    honest_job_succeeds();
}

// S2: fork bomb → capped, host healthy.
#[test]
fn s2_fork_bomb_is_killed() {
    let (_job, result) = hostile("forkbomb", None, Limits::default());
    assert!(matches!(result, Err(SandboxError::SeccompViolation)), "{result:?}");
    let (_job, result) = hostile("spawn", None, Limits::default());
    assert_denied(&result, "spawn a process");
    honest_job_succeeds();
}

// S3: allocate past the memory limit → killed, typed error.
#[test]
fn s3_memory_bomb_hits_the_address_space_limit() {
    let limits = Limits { address_space: 512 << 20, ..Limits::default() };
    let (_job, result) = hostile("membomb", None, limits);
    assert!(
        matches!(result, Err(SandboxError::MemoryLimit { bytes }) if bytes == 512 << 20),
        "{result:?}"
    );
    honest_job_succeeds();
}

// S4: CPU spin, or sleep forever → killed at the CPU or wall-clock limit.
#[test]
fn s4_cpu_spin_and_sleep_are_killed() {
    let limits =
        Limits { cpu_seconds: 1, wall_clock: Duration::from_secs(20), ..Limits::default() };
    let started = Instant::now();
    let (_job, result) = hostile("cpuspin", None, limits);
    assert!(matches!(result, Err(SandboxError::CpuLimit { seconds: 1 })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let limits = Limits { wall_clock: Duration::from_millis(500), ..Limits::default() };
    let started = Instant::now();
    let (_job, result) = hostile("sleep", None, limits);
    assert!(matches!(result, Err(SandboxError::Timeout { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    honest_job_succeeds();
}

// S5: read /etc/shadow, the home directory, the node's keystore → denied.
#[test]
fn s5_secrets_are_unreadable() {
    for abi in abis() {
        for target in
            ["{outside}/keystore.json", "/etc/shadow", "/etc/passwd", "/proc/self/environ"]
        {
            let (_job, result) = hostile(&format!("read {target}"), abi, Limits::default());
            assert_landlock_denied(&result, &format!("read {target} under {abi:?}"));
        }
        for dir in ["/root", "/home", "{outside}", "/"] {
            let (_job, result) = hostile(&format!("list {dir}"), abi, Limits::default());
            assert_landlock_denied(&result, &format!("list {dir} under {abi:?}"));
        }
    }
    honest_job_succeeds();
}

// S6: write, rename, link or truncate outside the scratch dir → denied, on the oldest and the
// newest Landlock ABI.
#[test]
fn s6_writes_outside_scratch_are_denied() {
    for abi in abis() {
        let cases = [
            "write {outside}/new",
            "append {outside}/keystore.json",
            "mkdir {outside}/dir",
            "unlink {outside}/keystore.json",
            "rename {outside}/keystore.json {outside}/moved",
            "rename {outside}/keystore.json {scratch}/stolen",
            "link {outside}/keystore.json {scratch}/stolen",
            "link {outside}/keystore.json {outside}/linked",
            "ftruncate {outside}/keystore.json",
            "write /tmp/attesta-escape-test",
        ];
        for case in cases {
            let (job, result) = hostile(case, abi, Limits::default());
            assert_landlock_denied(&result, &format!("{case} under {abi:?}"));
            let keystore = std::fs::read_to_string(job.outside.join("keystore.json")).unwrap();
            assert!(keystore.contains("secret key material"), "{case} changed the keystore");
            assert_eq!(
                std::fs::read_dir(&job.outside).unwrap().count(),
                1,
                "{case} left a file outside"
            );
        }
        // truncate(2) by path is not covered by Landlock ABI 1: the seccomp filter forbids it.
        let (job, result) = hostile("truncate {outside}/keystore.json", abi, Limits::default());
        assert_denied(&result, "truncate by path");
        assert!(
            std::fs::read_to_string(job.outside.join("keystore.json")).unwrap().contains("secret")
        );
    }
    assert!(!Path::new("/tmp/attesta-escape-test").exists());
    honest_job_succeeds();
}

// S7: ptrace the parent, or read /proc/PPID/mem → denied.
#[test]
fn s7_parent_cannot_be_traced_or_read() {
    let me = std::process::id();
    let (_job, result) = hostile(&format!("ptrace {me}"), None, Limits::default());
    assert!(matches!(result, Err(SandboxError::SeccompViolation)), "{result:?}");
    let (_job, result) = hostile(&format!("kill {me}"), None, Limits::default());
    assert!(matches!(result, Err(SandboxError::SeccompViolation)), "{result:?}");
    for abi in abis() {
        let (_job, result) = hostile(&format!("procmem {me}"), abi, Limits::default());
        assert_landlock_denied(&result, "read /proc/PPID/mem");
    }
    honest_job_succeeds();
}

// S7, layer by layer: /proc/PPID/mem is refused by Landlock alone (nothing under /proc is
// readable) and by the user namespace alone (the kernel's ptrace access check: the job holds no
// capability in the node's namespace).
#[test]
fn s7_landlock_and_user_namespace_each_deny_parent_memory_alone() {
    let procmem = format!("procmem {}", std::process::id());
    let landlock_only = SkipLayers { namespaces: true, seccomp: true, ..SkipLayers::default() };
    let (_job, result) = hostile_without(&procmem, landlock_only);
    assert_landlock_denied(&result, "/proc/PPID/mem under Landlock alone");
    let namespaces_only = SkipLayers { landlock: true, seccomp: true, ..SkipLayers::default() };
    let (_job, result) = hostile_without(&procmem, namespaces_only);
    assert!(
        matches!(&result, Err(SandboxError::Job { message }) if message.contains("Permission denied")),
        "/proc/PPID/mem under the namespaces alone: {result:?}"
    );
    // Control: with every layer off the same payload reads the node's memory (the same user may
    // read its own process's memory), unless Yama restricts ptrace on this host.
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    if matches!(yama.trim(), "" | "0") {
        let none = SkipLayers { namespaces: true, landlock: true, seccomp: true };
        let (_job, result) = hostile_without(&procmem, none);
        let out = result.unwrap();
        assert!(
            out.canonical.starts_with(b"ESCAPED"),
            "{:?}",
            String::from_utf8_lossy(&out.canonical)
        );
    } else {
        eprintln!("Yama ptrace_scope {}: the unsandboxed control cannot read either", yama.trim());
    }
    honest_job_succeeds();
}

// S8: mprotect to writable+executable → killed.
#[test]
fn s8_writable_executable_memory_is_killed() {
    for payload in ["mprotect-rwx", "mmap-rwx"] {
        let (_job, result) = hostile(payload, None, Limits::default());
        assert!(matches!(result, Err(SandboxError::SeccompViolation)), "{payload}: {result:?}");
    }
    honest_job_succeeds();
}

#[test]
fn execve_is_killed_and_stdout_flood_is_capped() {
    let (_job, result) = hostile("exec", None, Limits::default());
    assert!(matches!(result, Err(SandboxError::SeccompViolation)), "{result:?}");
    let limits = Limits { max_output: 1 << 20, ..Limits::default() };
    let started = Instant::now();
    let (_job, result) = hostile("flood", None, limits);
    assert!(
        matches!(result, Err(SandboxError::OutputTooLarge { limit }) if limit == 1 << 20),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    honest_job_succeeds();
}

#[test]
fn oversized_input_is_refused_before_spawning() {
    let job = Job::new("echo");
    let policy = job.policy().with_limits(Limits { max_input: 8, ..Limits::default() });
    let result = run_job(&policy, b"123456789");
    assert!(matches!(result, Err(SandboxError::InputTooLarge { size: 9, limit: 8 })), "{result:?}");
}

/// Pids of the processes whose parent is `ppid`.
pub(crate) fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Field 4 (ppid) comes after the ")" that closes the command name.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else { continue };
        if rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
            out.push(pid);
        }
    }
    out
}

/// The `/proc/<tid>/status` of every thread of a job that runs 4 threads (5 tasks), read from
/// outside while it runs (node → worker → init, pid 1 inside → job, pid 2 inside).
fn job_thread_statuses(skip: SkipLayers) -> Vec<String> {
    let job = Job::new("threads 4 1500");
    let mut policy = job.policy();
    policy.skip_layers = skip;
    let handle = std::thread::spawn(move || run_job(&policy, b""));
    let me = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut statuses = Vec::new();
    while Instant::now() < deadline && statuses.is_empty() {
        std::thread::sleep(Duration::from_millis(50));
        for worker in children_of(me) {
            for init in children_of(worker) {
                for job_pid in children_of(init) {
                    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{job_pid}/task"))
                        .map(|d| d.flatten().map(|e| e.path()).collect())
                        .unwrap_or_default();
                    if tasks.len() < 5 {
                        continue;
                    }
                    for task in &tasks {
                        let mut status = String::new();
                        std::fs::File::open(task.join("status"))
                            .unwrap()
                            .read_to_string(&mut status)
                            .unwrap();
                        statuses.push(status);
                    }
                }
            }
        }
    }
    assert_eq!(handle.join().unwrap().unwrap().canonical, b"ok");
    assert!(statuses.len() >= 5, "never saw the job's threads");
    statuses
}

// S10: every thread of the worker runs under the filter, checked from outside through
// /proc/<pid>/task/*/status.
#[test]
fn s10_every_job_thread_is_filtered() {
    for status in job_thread_statuses(SkipLayers::default()) {
        assert!(status.contains("\nSeccomp:\t2\n"), "thread not filtered:\n{status}");
        assert!(status.contains("\nNoNewPrivs:\t1\n"), "thread may gain privileges:\n{status}");
    }
    // Control: the same check sees threads without the filter when the filter is switched off.
    let unfiltered = job_thread_statuses(SkipLayers { seccomp: true, ..SkipLayers::default() });
    assert!(unfiltered.iter().all(|s| s.contains("\nSeccomp:\t0\n")), "{unfiltered:?}");
}

// S11: each syscall rule with argument conditions: allowed arguments pass, perturbed arguments
// are killed.
#[test]
fn s11_argument_rules_pass_allowed_and_kill_perturbed() {
    for rule in seccomp::ARGUMENT_RULES {
        let (_job, result) = hostile(&format!("rule {rule} allowed"), None, Limits::default());
        assert_eq!(result.unwrap_or_else(|e| panic!("{rule} allowed: {e:?}")).canonical, b"ok");
        let (_job, result) = hostile(&format!("rule {rule} perturbed"), None, Limits::default());
        assert!(
            matches!(result, Err(SandboxError::SeccompViolation)),
            "{rule} perturbed: {result:?}"
        );
    }
    honest_job_succeeds();
}

// S11, the calls a prepared worker makes between its two filters (rlimits, chdir, Landlock,
// seccomp, no_new_privs): killed in every job, cold or prepared.
#[test]
fn setup_calls_are_killed_in_the_job() {
    let calls = [
        "setrlimit",
        "prlimit64",
        "chdir",
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
        "seccomp",
        "no_new_privs",
    ];
    assert_eq!(calls.len(), seccomp::SETUP_CALLS.len() + 1, "a set-up call is not checked here");
    for call in calls {
        let (_job, result) = hostile(&format!("setup-call {call}"), None, Limits::default());
        assert!(matches!(result, Err(SandboxError::SeccompViolation)), "{call}: {result:?}");
    }
    // Control: without the filter the same calls return (and say so).
    let (_job, result) =
        hostile_without("setup-call chdir", SkipLayers { seccomp: true, ..SkipLayers::default() });
    assert!(result.unwrap().canonical.starts_with(b"ESCAPED"));
    honest_job_succeeds();
}

#[test]
fn no_descriptor_or_environment_variable_leaks_into_the_job() {
    use std::os::fd::AsRawFd;
    // An inheritable descriptor in the node (no CLOEXEC), like a leaked keystore handle.
    let job = Job::new("fds");
    let leaked = std::fs::File::open(job.outside.join("keystore.json")).unwrap();
    nix::fcntl::fcntl(&leaked, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).unwrap();
    assert!(leaked.as_raw_fd() > 2);
    let out = job.run(b"").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.canonical), "", "descriptors open in the job");
    drop(leaked);
    // This test process has plenty of variables (PATH, CARGO_*): none may reach the job.
    assert!(std::env::vars_os().count() > 0);
    let job = Job::new("env");
    let out = job.run(b"").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.canonical), "", "environment variables in the job");
}

/// The suite can fail: without the sandbox the same payloads get through. (Proves the denials
/// above come from the sandbox, not from the payloads being broken.)
#[test]
fn without_the_sandbox_the_payloads_escape() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for template in [
        "read {outside}/keystore.json".to_owned(),
        "write {outside}/new".to_owned(),
        "rename {outside}/keystore.json {scratch}/stolen".to_owned(),
        "mprotect-rwx".to_owned(),
        format!("connect {port}"),
    ] {
        let job = Job::new("placeholder");
        let spec = spec_for(&template, job.dir.path());
        std::fs::write(&job.model, format!("ATTESTA-ESCAPE:{spec}")).unwrap();
        let out = run_job(&job.policy().unsandboxed_for_benchmarks(), b"").unwrap();
        assert!(
            out.canonical.starts_with(b"ESCAPED"),
            "{template}: {:?}",
            String::from_utf8_lossy(&out.canonical)
        );
    }
    let (_job, result) = hostile("rule mmap perturbed", None, Limits::default());
    assert!(matches!(result, Err(SandboxError::SeccompViolation)));
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).ceil() as usize;
    v[i.min(v.len() - 1)]
}

fn oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ").map(|n| n.trim().parse().unwrap()))
        .unwrap_or(0)
}

/// RELIABILITY.md figures 6 and 7: every hostile payload blocked under the oldest and the newest
/// Landlock ABI; kill latency p99 of fork, memory and CPU bombs; host OOM kills (must stay 0).
/// `ATTESTA_ESCAPE_RUNS` (default 5) bombs of each kind; run with `--nocapture` to see them.
#[test]
fn figures_escape_blocked_and_kill_latency() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let me = std::process::id();
    let payloads = [
        format!("connect {port}"),
        "resolve example.com".into(),
        "read {outside}/keystore.json".into(),
        "read /etc/shadow".into(),
        "list /root".into(),
        "write {outside}/new".into(),
        "append {outside}/keystore.json".into(),
        "mkdir {outside}/d".into(),
        "unlink {outside}/keystore.json".into(),
        "rename {outside}/keystore.json {scratch}/x".into(),
        "link {outside}/keystore.json {scratch}/x".into(),
        "truncate {outside}/keystore.json".into(),
        "ftruncate {outside}/keystore.json".into(),
        "exec".into(),
        "spawn".into(),
        "forkbomb".into(),
        format!("ptrace {me}"),
        format!("procmem {me}"),
        format!("kill {me}"),
        "mprotect-rwx".into(),
        "mmap-rwx".into(),
    ];
    for abi in abis() {
        let mut blocked = 0;
        for p in &payloads {
            let (_job, result) = hostile(p, abi, Limits::default());
            assert!(result.is_err(), "{p} under {abi:?} got through: {result:?}");
            blocked += 1;
        }
        // The bombs with their limits.
        let limits = Limits {
            address_space: 512 << 20,
            cpu_seconds: 1,
            wall_clock: Duration::from_secs(1),
            max_output: 1 << 20,
            ..Limits::default()
        };
        for p in ["membomb", "cpuspin", "sleep", "flood"] {
            let (_job, result) = hostile(p, abi, limits.clone());
            assert!(result.is_err(), "{p} under {abi:?}: {result:?}");
            blocked += 1;
        }
        assert!(listener.accept().is_err());
        let total = payloads.len() + 4;
        eprintln!(
            "escape suite under Landlock {:?}: {blocked}/{total} blocked",
            abi.unwrap_or(LandlockAbi::from(probe().landlock_abi))
        );
    }

    let runs: usize =
        std::env::var("ATTESTA_ESCAPE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let ooms = oom_kills();
    let mem = Limits { address_space: 512 << 20, ..Limits::default() };
    let cpu = Limits { cpu_seconds: 1, ..Limits::default() };
    for (name, limits, expected_at) in [
        ("forkbomb", Limits::default(), Duration::ZERO),
        ("membomb", mem, Duration::ZERO),
        ("cpuspin", cpu, Duration::from_secs(1)),
    ] {
        let mut latencies = Vec::new();
        for _ in 0..runs {
            let job = Job::new(name);
            let started = Instant::now();
            let err = job.run_with(None, limits.clone()).unwrap_err();
            let took = started.elapsed();
            assert!(
                matches!(
                    err,
                    SandboxError::SeccompViolation
                        | SandboxError::MemoryLimit { .. }
                        | SandboxError::CpuLimit { .. }
                ),
                "{name}: {err:?}"
            );
            // Spawn to reaped, minus the limit the bomb had to reach first (CPU: 1 s).
            latencies.push(took.saturating_sub(expected_at));
        }
        eprintln!(
            "{name}: kill latency p50 {:?}, p99 {:?} over {runs} runs",
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99)
        );
    }
    assert_eq!(oom_kills(), ooms, "the host's OOM killer ran");
    honest_job_succeeds();
}
