//! Hostile payloads for the escape suite (feature `escape-tests` only; never shipped).
//!
//! A model file whose content starts with `ATTESTA-ESCAPE:<payload> <args...>` makes the worker
//! run that payload instead of inference, after the sandbox is in place, through the same entry
//! path as any job. A payload that gets through returns output starting with `ESCAPED`; one
//! that is refused returns an error starting with `denied:`; the rest is the sandbox killing it.
#![allow(unsafe_code, clippy::print_stdout)]

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use nix::libc;

/// The marker at the start of a payload model file.
pub(super) const MARKER: &[u8] = b"ATTESTA-ESCAPE:";

/// Runs the payload named in `model`, or returns `None` if `model` is a real model.
pub(super) fn maybe_run(model: &Path, input: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(model).and_then(|mut f| f.read(&mut head)).ok()?;
    let spec = head[..n].strip_prefix(MARKER)?;
    let spec = String::from_utf8_lossy(spec);
    let words: Vec<&str> = spec.split_whitespace().collect();
    Some(run(&words, input))
}

fn escaped(what: impl std::fmt::Display) -> Result<Vec<u8>, String> {
    Ok(format!("ESCAPED: {what}").into_bytes())
}

fn denied(e: impl std::fmt::Display) -> String {
    format!("denied: {e}")
}

fn arg<'a>(words: &[&'a str], i: usize) -> Result<&'a str, String> {
    words.get(i).copied().ok_or_else(|| format!("payload needs argument {i}"))
}

fn pid_arg(words: &[&str], i: usize) -> Result<libc::pid_t, String> {
    arg(words, i)?.parse().map_err(|e| format!("bad pid: {e}"))
}

fn run(words: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    match *words.first().unwrap_or(&"") {
        // Honest control: proves the sandbox lets a normal job through.
        "echo" => Ok(input.to_vec()),
        // Honest control: the scratch dir is writable.
        "scratch" => {
            let path = Path::new(arg(words, 1)?);
            std::fs::write(path, input).map_err(denied)?;
            std::fs::read(path).map_err(denied)
        }
        "connect" => {
            let port: u16 = arg(words, 1)?.parse().map_err(|e| format!("bad port: {e}"))?;
            match std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_secs(2),
            ) {
                Ok(_) => escaped("connected"),
                Err(e) => Err(denied(e)),
            }
        }
        "resolve" => {
            use std::net::ToSocketAddrs;
            match (arg(words, 1)?, 80).to_socket_addrs() {
                Ok(addrs) => escaped(format!("resolved {:?}", addrs.collect::<Vec<_>>())),
                Err(e) => Err(denied(e)),
            }
        }
        "read" => match std::fs::read(arg(words, 1)?) {
            Ok(bytes) => escaped(format!("read {} bytes", bytes.len())),
            Err(e) => Err(denied(e)),
        },
        "list" => match std::fs::read_dir(arg(words, 1)?) {
            Ok(entries) => escaped(format!("listed {} entries", entries.count())),
            Err(e) => Err(denied(e)),
        },
        "write" => match std::fs::write(arg(words, 1)?, b"pwned") {
            Ok(()) => escaped("wrote"),
            Err(e) => Err(denied(e)),
        },
        "append" => {
            let opened = std::fs::OpenOptions::new().append(true).open(arg(words, 1)?);
            match opened.and_then(|mut f| f.write_all(b"pwned")) {
                Ok(()) => escaped("appended"),
                Err(e) => Err(denied(e)),
            }
        }
        "mkdir" => match std::fs::create_dir(arg(words, 1)?) {
            Ok(()) => escaped("made a directory"),
            Err(e) => Err(denied(e)),
        },
        "unlink" => match std::fs::remove_file(arg(words, 1)?) {
            Ok(()) => escaped("removed"),
            Err(e) => Err(denied(e)),
        },
        "rename" => match std::fs::rename(arg(words, 1)?, arg(words, 2)?) {
            Ok(()) => escaped("renamed"),
            Err(e) => Err(denied(e)),
        },
        "link" => match std::fs::hard_link(arg(words, 1)?, arg(words, 2)?) {
            Ok(()) => escaped("linked"),
            Err(e) => Err(denied(e)),
        },
        // truncate(2) by path.
        "truncate" => {
            let path = std::ffi::CString::new(arg(words, 1)?).map_err(|e| e.to_string())?;
            // SAFETY: `path` is a valid NUL-terminated string.
            match unsafe { libc::truncate(path.as_ptr(), 0) } {
                0 => escaped("truncated"),
                _ => Err(denied(std::io::Error::last_os_error())),
            }
        }
        // open(O_WRONLY) then ftruncate(2).
        "ftruncate" => {
            match std::fs::OpenOptions::new()
                .write(true)
                .open(arg(words, 1)?)
                .and_then(|f| f.set_len(0))
            {
                Ok(()) => escaped("truncated"),
                Err(e) => Err(denied(e)),
            }
        }
        "exec" => {
            let sh = c"/bin/sh";
            let args = [c"sh", c"-c", c"echo pwned"];
            match nix::unistd::execv(sh, &args) {
                Ok(never) => match never {},
                Err(e) => Err(denied(e)),
            }
        }
        "spawn" => match std::process::Command::new("/bin/sh").arg("-c").arg("true").status() {
            Ok(status) => escaped(format!("spawned: {status}")),
            Err(e) => Err(denied(e)),
        },
        "forkbomb" => loop {
            // SAFETY: hostile test code; the child only loops forking too.
            if let Err(e) = unsafe { nix::unistd::fork() } {
                return Err(denied(e));
            }
        },
        "membomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 64 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "cpuspin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "sleep" => {
            std::thread::sleep(Duration::from_secs(3600));
            escaped("woke up")
        }
        "ptrace" => {
            let pid = pid_arg(words, 1)?;
            // SAFETY: PTRACE_ATTACH takes no pointers.
            match unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0usize, 0usize) } {
                0 => escaped("attached"),
                _ => Err(denied(std::io::Error::last_os_error())),
            }
        }
        "kill" => {
            let pid = pid_arg(words, 1)?;
            // SAFETY: kill takes no pointers.
            match unsafe { libc::kill(pid, libc::SIGTERM) } {
                0 => escaped("signalled"),
                _ => Err(denied(std::io::Error::last_os_error())),
            }
        }
        // Opening is the escape: the kernel checks ptrace access at open, and the descriptor
        // then reads (and writes) the node's memory at any mapped address.
        "procmem" => {
            let pid = pid_arg(words, 1)?;
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/proc/{pid}/mem"))
            {
                Ok(_) => escaped("opened the parent's memory for reading and writing"),
                Err(e) => Err(denied(e)),
            }
        }
        "mmap-rwx" => mmap(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC)
            .map(|_| b"ESCAPED: rwx".to_vec()),
        "mprotect-rwx" => {
            let addr = mmap(libc::PROT_READ | libc::PROT_WRITE)?;
            mprotect(addr, libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC)?;
            escaped("made memory writable and executable")
        }
        "flood" => {
            let chunk = vec![b'x'; 1 << 16];
            let mut out = std::io::stdout().lock();
            loop {
                if let Err(e) = out.write_all(&chunk) {
                    return Err(denied(e));
                }
            }
        }
        "threads" => {
            let count: usize = arg(words, 1)?.parse().map_err(|e| format!("bad count: {e}"))?;
            let ms: u64 = arg(words, 2)?.parse().map_err(|e| format!("bad ms: {e}"))?;
            let handles: Vec<_> = (0..count)
                .map(|_| std::thread::spawn(move || std::thread::sleep(Duration::from_millis(ms))))
                .collect();
            for h in handles {
                h.join().map_err(|_| "thread panicked".to_owned())?;
            }
            Ok(b"ok".to_vec())
        }
        // Descriptors the job holds beyond stdin, stdout and stderr (none should leak in).
        "fds" => {
            // SAFETY: F_GETFD takes no pointers; it only tells whether `fd` is open.
            let open: Vec<String> = (3..256)
                .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
                .map(|fd| fd.to_string())
                .collect();
            Ok(open.join(",").into_bytes())
        }
        // The job's environment (the node's may hold the keystore password).
        "env" => Ok(std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes()),
        "rule" => rule(arg(words, 1)?, arg(words, 2)? == "perturbed"),
        "setup-call" => setup_call(arg(words, 1)?),
        other => Err(format!("unknown payload {other:?}")),
    }
}

fn mmap(prot: libc::c_int) -> Result<*mut libc::c_void, String> {
    // SAFETY: anonymous private mapping at an address the kernel picks.
    let addr = unsafe {
        libc::mmap(std::ptr::null_mut(), 4096, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    if addr == libc::MAP_FAILED {
        return Err(denied(std::io::Error::last_os_error()));
    }
    Ok(addr)
}

fn mprotect(addr: *mut libc::c_void, prot: libc::c_int) -> Result<(), String> {
    // SAFETY: `addr` is a page we mapped and never use from Rust.
    match unsafe { libc::mprotect(addr, 4096, prot) } {
        0 => Ok(()),
        _ => Err(denied(std::io::Error::last_os_error())),
    }
}

/// S11: calls the syscall of one argument rule with allowed arguments (must return `ok`) or with
/// perturbed ones (must be killed by the filter).
fn rule(name: &str, perturbed: bool) -> Result<Vec<u8>, String> {
    let ok = || Ok(b"ok".to_vec());
    let check = |ret: libc::c_long| {
        if ret < 0 {
            Err(format!("syscall failed: {}", std::io::Error::last_os_error()))
        } else {
            ok()
        }
    };
    match name {
        "mmap" => {
            let prot = if perturbed { libc::PROT_READ | libc::PROT_EXEC } else { libc::PROT_READ };
            mmap(prot).and_then(|_| ok())
        }
        "mprotect" => {
            let addr = mmap(libc::PROT_READ | libc::PROT_WRITE)?;
            let prot = if perturbed { libc::PROT_READ | libc::PROT_EXEC } else { libc::PROT_READ };
            mprotect(addr, prot).and_then(|()| ok())
        }
        "clone" => {
            if !perturbed {
                return std::thread::spawn(|| 7)
                    .join()
                    .map_err(|_| "thread failed".to_owned())
                    .and_then(|_| ok());
            }
            // A fork-style clone: the filter must kill it before a child exists.
            // SAFETY: no CLONE_VM; the child, if any, exits at once.
            let ret = unsafe {
                let ret = libc::syscall(
                    libc::SYS_clone,
                    libc::c_long::from(libc::SIGCHLD),
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                );
                if ret == 0 {
                    libc::_exit(0);
                }
                ret
            };
            check(ret)
        }
        "prctl" => {
            // SAFETY: PR_SET_NAME reads a NUL-terminated string; PR_SET_DUMPABLE takes an int.
            let ret = unsafe {
                if perturbed {
                    libc::prctl(libc::PR_SET_DUMPABLE, 1usize, 0usize, 0usize, 0usize)
                } else {
                    libc::prctl(libc::PR_SET_NAME, c"job".as_ptr(), 0usize, 0usize, 0usize)
                }
            };
            check(libc::c_long::from(ret))
        }
        "tgkill" => {
            // Signal 0 only checks the target exists.
            let pid = std::process::id() as libc::c_long + if perturbed { 1 } else { 0 };
            // SAFETY: tgkill takes no pointers; signal 0 delivers nothing.
            let ret =
                unsafe { libc::syscall(libc::SYS_tgkill, pid, libc::syscall(libc::SYS_gettid), 0) };
            check(ret)
        }
        "fcntl" => {
            let op = if perturbed { libc::F_DUPFD } else { libc::F_GETFD };
            // SAFETY: F_GETFD / F_DUPFD on stdin take no pointers.
            let ret = unsafe { libc::fcntl(0, op, 10) };
            check(libc::c_long::from(ret))
        }
        other => Err(format!("unknown rule {other:?}")),
    }
}

/// The calls a prepared worker still makes before its closing filter ([`super::seccomp::SETUP_CALLS`]
/// and `prctl(PR_SET_NO_NEW_PRIVS)`): a job, cold or prepared, must be killed for each.
/// Harmless arguments: a call that got through changes nothing but returns `ESCAPED`.
fn setup_call(name: &str) -> Result<Vec<u8>, String> {
    let nr = match name {
        "setrlimit" => libc::SYS_setrlimit,
        "prlimit64" => libc::SYS_prlimit64,
        "chdir" => libc::SYS_chdir,
        "landlock_create_ruleset" => libc::SYS_landlock_create_ruleset,
        "landlock_add_rule" => libc::SYS_landlock_add_rule,
        "landlock_restrict_self" => libc::SYS_landlock_restrict_self,
        "seccomp" => libc::SYS_seccomp,
        "no_new_privs" => {
            // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
            let ret =
                unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1usize, 0usize, 0usize, 0usize) };
            return escaped(format!("prctl(PR_SET_NO_NEW_PRIVS) returned {ret}"));
        }
        other => return Err(format!("unknown setup call {other:?}")),
    };
    // seccomp: SECCOMP_GET_ACTION_AVAIL (2), a query, not mode 0 (strict).
    let first: usize = if nr == libc::SYS_seccomp { 2 } else { 0 };
    // SAFETY: every pointer argument is NULL (EFAULT at worst); nothing is written.
    let ret = unsafe { libc::syscall(nr, first, 0usize, 0usize, 0usize) };
    escaped(format!("{name} returned {ret}"))
}
