//! What a tool loads and runs: the closure `reprove lock` pins.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::read::elf::{Dyn as _, FileHeader, ProgramHeader};
use object::read::ReadCache;
use object::{elf, Endianness};

use super::{Error, Tool, BUILD_PATH};

/// The first executable file named `name` on [`BUILD_PATH`], and where its symlinks lead.
pub(crate) fn find_on_path(name: &str) -> Result<Tool, Error> {
    for dir in BUILD_PATH.split(':') {
        let candidate = Path::new(dir).join(name);
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            let resolved = std::fs::canonicalize(&candidate).map_err(|source| Error::Io {
                path: candidate.clone(),
                source,
            })?;
            return Ok(Tool {
                path: candidate,
                resolved,
            });
        }
    }
    Err(Error::ToolNotFound(name.to_owned()))
}

/// Resolve `tools` and gather every file they load and run.
pub(crate) fn lock_tools(
    tools: &[String],
) -> Result<(BTreeMap<String, Tool>, BTreeSet<PathBuf>), Error> {
    let mut resolved = BTreeMap::new();
    let mut closure = Closure::default();
    for name in tools {
        let tool = find_on_path(name)?;
        closure.push(&tool.resolved);
        if let Some(driver) = gcc_driver(&tool.resolved) {
            for prog in driver.programs {
                closure.push(&prog);
            }
            for dir in driver.folders {
                closure.push_folder(&dir)?;
            }
        }
        resolved.insert(name.clone(), tool);
    }
    closure.run()?;
    Ok((resolved, closure.files))
}

/// Every file `files` (each a file that exists) load: the files themselves, their ELF
/// interpreter and shared libraries, transitively (a preloaded library such as libfaketime).
pub(crate) fn lock_files(files: &[&Path]) -> Result<BTreeSet<PathBuf>, Error> {
    let mut closure = Closure::default();
    for file in files {
        closure.push(file);
    }
    closure.run()?;
    Ok(closure.files)
}

/// Where the symbolic links that lead to pinned files are looked for: the host's toolchain
/// (`/usr`, the merged-`/usr` links at the top) and the alternatives `cc` and friends go through.
const LINK_ROOTS: &[&str] = &["/usr", "/etc/alternatives"];
const TOP_LINKS: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// Every symbolic link the build may pass on its way to a pinned file: the links under
/// [`LINK_ROOTS`], the top-level merged-`/usr` links, and each link on the way from a tool's
/// name to its file, kept when it resolves to a pinned file or to a folder that holds one.
/// The sandbox's view of the lock has these links and no others.
pub(super) fn links_to(pins: &[super::Pin], tools: &BTreeMap<String, Tool>) -> Vec<super::Link> {
    let files: BTreeSet<PathBuf> = pins.iter().map(|p| p.path.clone()).collect();
    let mut folders: BTreeSet<PathBuf> = files
        .iter()
        .flat_map(|p| p.ancestors().skip(1).map(Path::to_path_buf))
        .collect();
    let mut candidates: BTreeSet<PathBuf> = TOP_LINKS.iter().map(PathBuf::from).collect();
    for root in LINK_ROOTS {
        for entry in walkdir::WalkDir::new(root).into_iter().flatten() {
            if entry.path_is_symlink() {
                candidates.insert(entry.into_path());
            }
        }
    }
    for tool in tools.values() {
        candidates.extend(links_on(&tool.path));
    }
    for file in &files {
        candidates.extend(links_on(file));
    }
    let mut pending: Vec<(PathBuf, PathBuf, PathBuf)> = candidates
        .into_iter()
        .filter_map(|path| {
            let target = std::fs::read_link(&path).ok()?;
            let real = std::fs::canonicalize(&path).ok()?;
            Some((path, target, real))
        })
        .collect();
    // A link is kept when it leads to a pinned file or to a folder the view has: one holding a
    // pinned file or a kept link (`/lib64` → `usr/lib64`, which holds only the loader's link).
    let mut kept = Vec::new();
    loop {
        let (wanted, rest): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(_, _, real)| files.contains(real) || folders.contains(real));
        pending = rest;
        if wanted.is_empty() {
            break;
        }
        for (path, target, _) in wanted {
            folders.extend(path.ancestors().skip(1).map(Path::to_path_buf));
            kept.push(super::Link { path, target });
        }
    }
    kept.sort();
    kept
}

/// The symbolic links met while resolving `path`, component by component (at most 40 hops).
fn links_on(path: &Path) -> Vec<PathBuf> {
    let mut links = Vec::new();
    let mut pending: VecDeque<PathBuf> = VecDeque::from([path.to_path_buf()]);
    let mut hops = 0;
    while let Some(path) = pending.pop_front() {
        let mut prefix = PathBuf::from("/");
        for component in path.components().skip(1) {
            prefix.push(component);
            let Ok(meta) = std::fs::symlink_metadata(&prefix) else {
                break;
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            hops += 1;
            if hops > 40 {
                return links;
            }
            links.push(prefix.clone());
            if let Ok(target) = std::fs::read_link(&prefix) {
                let parent = prefix.parent().unwrap_or(Path::new("/"));
                let rest: PathBuf = path.strip_prefix(&prefix).unwrap_or(Path::new("")).into();
                pending.push_back(parent.join(target).join(rest));
            }
            break;
        }
    }
    links
}

/// Files to pin, found breadth-first from the tools.
#[derive(Debug, Default)]
struct Closure {
    files: BTreeSet<PathBuf>,
    queue: VecDeque<PathBuf>,
}

impl Closure {
    fn push(&mut self, path: &Path) {
        if let Ok(real) = std::fs::canonicalize(path) {
            if real.is_file() && !self.files.contains(&real) {
                self.files.insert(real.clone());
                self.queue.push_back(real);
            }
        }
    }

    /// Every regular file below `dir` (symlinks followed to their files).
    fn push_folder(&mut self, dir: &Path) -> Result<(), Error> {
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.map_err(|e| Error::Io {
                path: dir.to_path_buf(),
                source: e.into(),
            })?;
            if !entry.file_type().is_dir() {
                self.push(entry.path());
            }
        }
        Ok(())
    }

    /// Follow every queued file to what it loads: ELF interpreter and libraries, `#!` lines.
    fn run(&mut self) -> Result<(), Error> {
        while let Some(path) = self.queue.pop_front() {
            let io = |source| Error::Io {
                path: path.clone(),
                source,
            };
            let mut head = [0u8; 256];
            let n = File::open(&path)
                .and_then(|mut f| f.read(&mut head))
                .map_err(io)?;
            let head = &head[..n];
            if head.starts_with(b"#!") {
                if let Some(interp) = shebang(head) {
                    self.push(&interp);
                }
            } else if head.starts_with(b"\x7fELF") {
                for dep in elf_dependencies(&path) {
                    self.push(&dep);
                }
            }
        }
        Ok(())
    }
}

/// The interpreter of a `#!` line (`/usr/bin/env` is pinned itself, not what it runs).
fn shebang(head: &[u8]) -> Option<PathBuf> {
    let line = head[2..].split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let interp = line.split_whitespace().next()?;
    interp.starts_with('/').then(|| PathBuf::from(interp))
}

/// The ELF interpreter and the shared libraries `path` needs, found as the dynamic loader
/// would find them (RUNPATH/RPATH with `$ORIGIN`, then the system's library folders).
/// A file that is not a readable ELF object has no dependencies.
fn elf_dependencies(path: &Path) -> Vec<PathBuf> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let cache = ReadCache::new(file);
    let data = &cache;
    let Ok(header) = elf::FileHeader64::<Endianness>::parse(data) else {
        return Vec::new();
    };
    let Ok(endian) = header.endian() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut needed = Vec::new();
    let mut runpath = Vec::new();
    let Ok(segments) = header.program_headers(endian, data) else {
        return Vec::new();
    };
    for seg in segments {
        if seg.p_type(endian) == elf::PT_INTERP {
            if let Ok(Some(bytes)) = seg.interpreter(endian, data) {
                if let Ok(s) = std::str::from_utf8(bytes) {
                    out.push(PathBuf::from(s));
                }
            }
        }
    }
    if let Ok(sections) = header.sections(endian, data) {
        if let Ok(Some((dynamic, index))) = sections.dynamic(endian, data) {
            if let Ok(strings) = sections.strings(endian, data, index) {
                for d in dynamic {
                    let tag = u32::try_from(d.d_tag(endian)).unwrap_or(0);
                    let Ok(offset) = u32::try_from(d.d_val(endian)) else {
                        continue;
                    };
                    let Ok(name) = strings.get(offset) else {
                        continue;
                    };
                    let name = String::from_utf8_lossy(name).into_owned();
                    match tag {
                        elf::DT_NEEDED => needed.push(name),
                        elf::DT_RUNPATH | elf::DT_RPATH => runpath.push(name),
                        _ => {}
                    }
                }
            }
        }
    }
    let origin = path.parent().unwrap_or(Path::new("/"));
    let mut dirs: Vec<PathBuf> = runpath
        .iter()
        .flat_map(|r| r.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d.replace("$ORIGIN", &origin.to_string_lossy())))
        .collect();
    dirs.extend(system_library_dirs());
    for lib in needed {
        if let Some(found) = dirs.iter().map(|d| d.join(&lib)).find(|p| p.is_file()) {
            out.push(found);
        }
    }
    out
}

fn system_library_dirs() -> Vec<PathBuf> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("/lib/{multiarch}"),
        format!("/usr/lib/{multiarch}"),
        "/lib64".to_owned(),
        "/usr/lib64".to_owned(),
        "/lib".to_owned(),
        "/usr/lib".to_owned(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// What a GCC driver runs besides itself.
#[derive(Debug)]
struct GccDriver {
    programs: Vec<PathBuf>,
    /// Its libexec folder (cc1, lto1, plugins) and its library folder (crt files, libgcc,
    /// its own headers), pinned whole.
    folders: Vec<PathBuf>,
}

/// Ask `compiler` whether it is a GCC driver, and if so which programs and folders it uses.
fn gcc_driver(compiler: &Path) -> Option<GccDriver> {
    let ask = |arg: &str| -> Option<String> {
        let out = Command::new(compiler)
            .arg(arg)
            .env_clear()
            .env("PATH", BUILD_PATH)
            .env("LC_ALL", "C")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let cc1 = PathBuf::from(ask("-print-prog-name=cc1")?);
    if !cc1.is_absolute() || !cc1.is_file() {
        return None;
    }
    let mut programs = Vec::new();
    for prog in [
        "cc1",
        "cc1plus",
        "collect2",
        "lto-wrapper",
        "lto1",
        "as",
        "ld",
    ] {
        let Some(answer) = ask(&format!("-print-prog-name={prog}")) else {
            continue;
        };
        let p = PathBuf::from(&answer);
        if p.is_absolute() {
            programs.push(p);
        } else if let Ok(tool) = find_on_path(&answer) {
            // gcc runs `as` and `ld` from PATH when its own folders lack them.
            programs.push(tool.resolved);
        }
    }
    if let Some(crt1) = ask("-print-file-name=crt1.o").map(PathBuf::from) {
        if crt1.is_absolute() {
            programs.push(crt1);
        }
    }
    let mut folders: Vec<PathBuf> = cc1.parent().map(Path::to_path_buf).into_iter().collect();
    if let Some(libgcc) = ask("-print-libgcc-file-name").map(PathBuf::from) {
        if let Some(dir) = libgcc.parent().filter(|d| d.is_absolute() && d.is_dir()) {
            folders.push(dir.to_path_buf());
        }
    }
    folders.sort();
    folders.dedup();
    Some(GccDriver { programs, folders })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_on_the_build_path() {
        let sh = find_on_path("sh").unwrap();
        assert!(sh.path.starts_with("/usr/bin") || sh.path.starts_with("/bin"));
        assert!(sh.resolved.is_absolute());
        assert!(matches!(
            find_on_path("no-such-tool-here"),
            Err(Error::ToolNotFound(_))
        ));
    }

    #[test]
    fn an_elf_tool_pins_its_loader_and_libc() {
        let (tools, files) = lock_tools(&["sh".to_owned()]).unwrap();
        assert!(tools.contains_key("sh"));
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.starts_with("ld-linux")), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("libc.so")), "{names:?}");
    }

    #[test]
    fn gcc_pins_its_helpers_assembler_and_linker() {
        let (_, files) = lock_tools(&["gcc".to_owned()]).unwrap();
        let has = |name: &str| {
            files.iter().any(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(name))
            })
        };
        for name in [
            "cc1",
            "collect2",
            "crtbegin.o",
            "libgcc.a",
            "crt1.o",
            "ld.bfd",
        ] {
            assert!(has(name), "{name} not pinned");
        }
        // `as` resolves to the binutils assembler, whose libraries come along.
        assert!(
            files.iter().any(|p| p.to_string_lossy().contains("-as")),
            "assembler"
        );
        assert!(
            files.iter().any(|p| p.to_string_lossy().contains("libbfd")),
            "libbfd"
        );
    }

    #[test]
    fn shebang_interpreter() {
        assert_eq!(
            shebang(b"#!/bin/sh -e\nexit 0\n"),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            shebang(b"#! /usr/bin/env python3\n"),
            Some(PathBuf::from("/usr/bin/env"))
        );
        assert_eq!(shebang(b"#!relative\n"), None);
    }
}
