//! Opening a file that lies beneath a directory someone else wrote — a build tree, a shipped
//! folder, an escrow or a hermetic root — without ever leaving that directory.
//!
//! A [`Tree`] holds a handle on its root directory; every path is resolved from that handle,
//! never from its text joined to the root, so a folder on the way that was swapped for a
//! symlink cannot lead the read out of the tree. Invariants:
//!
//! - Resolution never leaves the root: not through an absolute symlink, nor a relative one
//!   whose `..` climbs above it (even on the way back in), nor a `/proc` magic link, in any
//!   component. `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` does it where the
//!   kernel has it; elsewhere (`ENOSYS`, or a seccomp filter's `EPERM`) an equivalent walk
//!   opens one component at a time with `O_NOFOLLOW | O_PATH` and resolves symlinks itself, at
//!   most [`MAX_HOPS`] of them. A refusal from `openat2` is explained by the same walk, which
//!   names the component at fault.
//! - [`Links::Inside`] follows a symlink that stays inside the tree (Debian's `dh_link` makes
//!   such links); [`Links::None`] follows none (a tree digest lists a link, it never reads
//!   through it).
//! - The type is checked on the opened handle (`fstat`), and a file is opened for reading only
//!   once it is known to be a regular file: a FIFO, a socket or a device is never opened for
//!   reading (so it can neither block nor act), a directory is never read as a file.
//! - What is hashed or copied is read from the returned [`File`], never by opening the path
//!   again.
//! - A walk of the whole tree (a tree digest) holds each folder it lists as a [`Folder`],
//!   reached from the root one component at a time with `O_NOFOLLOW`, and opens what the
//!   folder lists by name relative to that handle: one component, through no symlink, a file
//!   only when the folder lists it as a regular file and checked again on the handle. No path
//!   is resolved from the root per file, and a folder swapped for a link after it was listed
//!   leads nowhere: the walk holds the folder, not its name.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Symlinks resolved for one path at most, as the kernel's own limit (`MAXSYMLINKS`).
pub(crate) const MAX_HOPS: u32 = 40;

/// Which symlinks are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// Those that stay inside the tree.
    Inside,
    /// None at all.
    None,
}

/// What a path is when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    fn of(t: FileType) -> Option<Kind> {
        Some(match t {
            FileType::RegularFile => return None,
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            FileType::CharacterDevice => Kind::CharDevice,
            FileType::BlockDevice => Kind::BlockDevice,
            FileType::Unknown => Kind::Unknown,
        })
    }

    /// Of a `std` file type; `None` for a regular file.
    pub fn of_std(t: std::fs::FileType) -> Option<Kind> {
        use std::os::unix::fs::FileTypeExt as _;
        Some(if t.is_file() {
            return None;
        } else if t.is_dir() {
            Kind::Directory
        } else if t.is_symlink() {
            Kind::Symlink
        } else if t.is_fifo() {
            Kind::Fifo
        } else if t.is_socket() {
            Kind::Socket
        } else if t.is_char_device() {
            Kind::CharDevice
        } else if t.is_block_device() {
            Kind::BlockDevice
        } else {
            Kind::Unknown
        })
    }

    /// `a directory`, `a FIFO`, …
    pub fn with_article(self) -> &'static str {
        match self {
            Kind::Directory => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
            Kind::Unknown => "not a regular file",
        }
    }
}

/// Why a path beneath a tree could not be opened as a regular file. Every variant but `Io`
/// is a fact about the tree (the answer for an artifact is `missing`, with this as the
/// reason); `Io` means the question could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{}` is a symlink that leaves the {tree}", link.display())]
    LinkLeaves { link: PathBuf, tree: &'static str },
    #[error("`{}` leaves the {tree}", path.display())]
    PathLeaves { path: PathBuf, tree: &'static str },
    #[error("`{}` is a symlink, and links are not followed here", path.display())]
    Link { path: PathBuf },
    #[error("`{}` passes through more than {MAX_HOPS} symlinks", path.display())]
    Loop { path: PathBuf },
    #[error("`{}` does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("`{}` is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("`{}` is {}", path.display(), kind.with_article())]
    NotAFile { path: PathBuf, kind: Kind },
    #[error("`{}` changed while it was opened", path.display())]
    Changed { path: PathBuf },
    #[error("failed to open `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// True when the tree itself is the answer (not an I/O failure).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Error::Io { .. })
    }
}

/// A file opened beneath a tree.
#[derive(Debug)]
pub(crate) struct Opened {
    pub file: File,
    /// Where it is in the tree with every symlink resolved, when known (the walk knows it;
    /// after `openat2` it is read from `/proc/self/fd`).
    pub resolved: Option<PathBuf>,
}

/// A directory whose contents someone else wrote, opened once.
#[derive(Debug)]
pub(crate) struct Tree {
    dir: rustix::fd::OwnedFd,
    root: PathBuf,
    /// How messages name it: `build tree`, `shipped folder`, …
    what: &'static str,
}

impl Tree {
    /// Open the directory `root` (itself not a symlink: reprove made it, or walked to it).
    /// `what` names it in messages.
    pub(crate) fn open(root: &Path, what: &'static str) -> Result<Tree, Error> {
        Self::open_with(root, what, OFlags::NOFOLLOW)
    }

    /// Open the directory `root` that a user named (a symlink to a directory is followed, as
    /// the user asked for it); what lies beneath is then read as for [`Tree::open`].
    pub(crate) fn open_named(root: &Path, what: &'static str) -> Result<Tree, Error> {
        Self::open_with(root, what, OFlags::empty())
    }

    fn open_with(root: &Path, what: &'static str, flags: OFlags) -> Result<Tree, Error> {
        let dir = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | flags,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR | Errno::LOOP => Error::NotADirectory {
                path: root.to_path_buf(),
            },
            e => Error::Io {
                path: root.to_path_buf(),
                source: e.into(),
            },
        })?;
        Ok(Tree {
            dir,
            root: root.to_path_buf(),
            what,
        })
    }

    /// The root's path, as given.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Check that `rel` is a directory beneath the root whose every component is a directory:
    /// no symlink is followed, not even one that stays inside (a build that starts there
    /// must start where the check looked, whoever resolves the path next).
    pub(crate) fn check_dir(&self, rel: &Path) -> Result<(), Error> {
        let mut here = PathBuf::new();
        let mut parent: Option<rustix::fd::OwnedFd> = None;
        for component in rel.components() {
            let name = match component {
                Component::Normal(name) => name,
                Component::CurDir => continue,
                _ => {
                    return Err(Error::PathLeaves {
                        path: rel.to_path_buf(),
                        tree: self.what,
                    })
                }
            };
            here.push(name);
            let fd = rustix::fs::openat(
                parent.as_ref().unwrap_or(&self.dir),
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                Errno::NOENT => Error::NotFound { path: here.clone() },
                e => Error::Io {
                    path: here.clone(),
                    source: e.into(),
                },
            })?;
            let st = rustix::fs::fstat(&fd).map_err(|e| Error::Io {
                path: here.clone(),
                source: e.into(),
            })?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => parent = Some(fd),
                FileType::Symlink => return Err(Error::Link { path: here }),
                _ => return Err(Error::NotADirectory { path: here }),
            }
        }
        Ok(())
    }

    /// Open `rel` beneath the root for reading; it must be a regular file.
    pub(crate) fn open_file(&self, rel: &Path, links: Links) -> Result<Opened, Error> {
        match self.open_fast(rel, links) {
            Ok(opened) => Ok(opened),
            // The walk is the reference: it names what is wrong, and stands in for openat2
            // where the kernel or a seccomp filter refuses it.
            Err(_) => self.walk(rel, links),
        }
    }

    fn resolve_flags(links: Links) -> ResolveFlags {
        match links {
            Links::Inside => ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            Links::None => ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        }
    }

    /// `openat2`: an `O_PATH` handle first, to learn the type without opening anything for
    /// reading; then, for a regular file, the same resolution for reading, checked to be the
    /// same file.
    fn open_fast(&self, rel: &Path, links: Links) -> Result<Opened, Errno> {
        let resolve = Self::resolve_flags(links);
        let probe = rustix::fs::openat2(
            &self.dir,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            resolve,
        )?;
        let st = rustix::fs::fstat(&probe)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            // The walk names the kind, or the link, at fault.
            return Err(Errno::INVAL);
        }
        let fd = rustix::fs::openat2(
            &self.dir,
            rel,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
            resolve,
        )?;
        let again = rustix::fs::fstat(&fd)?;
        if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
            return Err(Errno::AGAIN);
        }
        // Through no symlink and no `..`, the path resolved is the path given: no need to ask
        // `/proc` (a readlink and a canonicalize per file, for every file of a tree digest).
        let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
        let resolved = if links == Links::None && plain {
            Some(rel.components().collect())
        } else {
            self.resolved_from_proc(&fd)
        };
        Ok(Opened {
            file: File::from(fd),
            resolved,
        })
    }

    /// The path of `fd` relative to the root, as the kernel names it.
    fn resolved_from_proc(&self, fd: &rustix::fd::OwnedFd) -> Option<PathBuf> {
        use std::os::fd::AsRawFd as _;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        let root = std::fs::canonicalize(&self.root).ok()?;
        real.strip_prefix(&root).ok().map(Path::to_path_buf)
    }

    /// The component-by-component walk: `O_NOFOLLOW | O_PATH` for each component, symlinks
    /// resolved here, `..` never above the root.
    fn walk(&self, rel: &Path, links: Links) -> Result<Opened, Error> {
        let shown = |names: &[OsString], last: &OsStr| -> PathBuf {
            let mut p: PathBuf = names.iter().collect();
            p.push(last);
            p
        };
        let io = |path: PathBuf| {
            move |e: Errno| Error::Io {
                path,
                source: e.into(),
            }
        };
        // Directories below the root, as handles and names.
        let mut fds: Vec<rustix::fd::OwnedFd> = Vec::new();
        let mut names: Vec<OsString> = Vec::new();
        // Components still to resolve, each with the symlink its text came from, if any.
        let mut todo: std::collections::VecDeque<(OsString, Option<PathBuf>)> =
            std::collections::VecDeque::new();
        if rel.is_absolute() {
            return Err(Error::PathLeaves {
                path: rel.to_path_buf(),
                tree: self.what,
            });
        }
        push_components(&mut todo, rel.as_os_str().as_bytes(), None, false);
        let mut hops = 0;
        while let Some((name, via)) = todo.pop_front() {
            if name == ".." {
                if fds.pop().is_none() {
                    return Err(match via {
                        Some(link) => Error::LinkLeaves {
                            link,
                            tree: self.what,
                        },
                        None => Error::PathLeaves {
                            path: rel.to_path_buf(),
                            tree: self.what,
                        },
                    });
                }
                names.pop();
                continue;
            }
            let here = shown(&names, &name);
            let parent = fds.last().unwrap_or(&self.dir);
            let fd = rustix::fs::openat(
                parent,
                name.as_os_str(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                Errno::NOENT => Error::NotFound { path: here.clone() },
                Errno::NOTDIR => Error::NotADirectory {
                    path: names.iter().collect(),
                },
                e => io(here.clone())(e),
            })?;
            let st = rustix::fs::fstat(&fd).map_err(io(here.clone()))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    if links == Links::None {
                        return Err(Error::Link { path: here });
                    }
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(Error::Loop {
                            path: rel.to_path_buf(),
                        });
                    }
                    let target =
                        rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(io(here.clone()))?;
                    let target = target.as_bytes();
                    // The outermost link is the one to name: its text led the walk here.
                    let via = via.unwrap_or(here);
                    if target.first() == Some(&b'/') {
                        return Err(Error::LinkLeaves {
                            link: via,
                            tree: self.what,
                        });
                    }
                    push_components(&mut todo, target, Some(&via), true);
                }
                FileType::Directory => {
                    fds.push(fd);
                    names.push(name);
                }
                FileType::RegularFile if todo.is_empty() => {
                    let file = rustix::fs::openat(
                        parent,
                        name.as_os_str(),
                        OFlags::RDONLY
                            | OFlags::NOFOLLOW
                            | OFlags::NONBLOCK
                            | OFlags::NOCTTY
                            | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io(here.clone()))?;
                    let again = rustix::fs::fstat(&file).map_err(io(here.clone()))?;
                    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
                        return Err(Error::Changed { path: here });
                    }
                    return Ok(Opened {
                        file: File::from(file),
                        resolved: Some(here),
                    });
                }
                t if todo.is_empty() => {
                    return Err(Error::NotAFile {
                        path: rel.to_path_buf(),
                        kind: Kind::of(t).unwrap_or(Kind::Unknown),
                    });
                }
                _ => return Err(Error::NotADirectory { path: here }),
            }
        }
        // Every component resolved to a directory (or the path named the root itself).
        Err(Error::NotAFile {
            path: rel.to_path_buf(),
            kind: Kind::Directory,
        })
    }
}

/// The regular files found beneath a tree by [`Tree::list_files`], and whether a bound cut
/// the listing short.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Paths relative to the root, in the order found.
    pub files: Vec<PathBuf>,
    /// What else was found that is neither a regular file nor a folder (symlinks, FIFOs, …),
    /// with its kind: listed, never followed or opened, so a caller can say why it passed
    /// over each.
    pub others: Vec<(PathBuf, Kind)>,
    pub truncated: bool,
}

impl Tree {
    /// The regular files beneath the root, by name only (nothing is opened for reading): no
    /// symlink is followed, not even one that stays inside, so the walk cannot leave the tree
    /// or loop. Bounded: at most `max_entries` entries are looked at and folders deeper than
    /// `max_depth` are not entered (then `truncated` is set); iterative, not recursive. A
    /// folder that cannot be read is passed over.
    pub(crate) fn list_files(&self, max_entries: usize, max_depth: usize) -> Listing {
        let mut listing = Listing::default();
        let mut seen = 0usize;
        // Folders still to read, as paths below the root: each is opened again from the root,
        // one component at a time, so that no more than one handle per level is open at once.
        let mut todo: Vec<PathBuf> = vec![PathBuf::new()];
        while let Some(at) = todo.pop() {
            let Some(fd) = self.open_dir_nofollow(&at) else {
                continue;
            };
            let Ok(mut dir) = rustix::fs::Dir::new(fd) else {
                continue;
            };
            let depth = at.components().count();
            while let Some(Ok(entry)) = dir.read() {
                let name = OsStr::from_bytes(entry.file_name().to_bytes());
                if name == "." || name == ".." {
                    continue;
                }
                seen += 1;
                if seen > max_entries {
                    listing.truncated = true;
                    return listing;
                }
                let mut kind = entry.file_type();
                if kind == FileType::Unknown {
                    let Ok(parent) = dir.fd() else { continue };
                    kind = match rustix::fs::statat(
                        parent,
                        name,
                        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                    ) {
                        Ok(st) => FileType::from_raw_mode(st.st_mode),
                        Err(_) => continue,
                    };
                }
                match kind {
                    FileType::RegularFile => listing.files.push(at.join(name)),
                    FileType::Directory if depth < max_depth => todo.push(at.join(name)),
                    FileType::Directory => listing.truncated = true,
                    other => listing
                        .others
                        .push((at.join(name), Kind::of(other).unwrap_or(Kind::Unknown))),
                }
            }
        }
        listing
    }

    /// The folder `rel` (plain names only) opened for reading its entries, each component
    /// opened with `O_NOFOLLOW`: `None` when any is not a folder (or was swapped for a link).
    fn open_dir_nofollow(&self, rel: &Path) -> Option<rustix::fd::OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd = rustix::fs::openat(&self.dir, ".", flags, Mode::empty()).ok()?;
        for part in rel.components() {
            let Component::Normal(name) = part else {
                return None;
            };
            fd = rustix::fs::openat(&fd, name, flags, Mode::empty()).ok()?;
        }
        Some(fd)
    }
}

/// A folder beneath a [`Tree`], open for reading its entries: the handle a walk holds so that
/// what lies in the folder is opened by name relative to it, each name one component through
/// no symlink, never by a path resolved again from the root. The folder itself was reached the
/// same way (from the root, one component at a time, `O_NOFOLLOW`), so a folder on the way
/// swapped for a symlink after the walk passed it cannot lead anywhere: the walk holds the
/// folder, not its name.
#[derive(Debug)]
pub(crate) struct Folder {
    fd: rustix::fd::OwnedFd,
}

/// One entry of a [`Folder`]: its name and its type as the folder lists it (`d_type`; read
/// with `fstatat` and no follow where the file system does not say).
#[derive(Debug)]
pub(crate) struct FolderEntry {
    /// Where the name starts in the buffer [`Folder::entries`] appended to.
    pub start: usize,
    pub kind: FileType,
}

/// `O_RDONLY | O_DIRECTORY | O_NOFOLLOW`: a folder opened for listing, never through a link.
fn folder_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Tree {
    /// The root itself, as a [`Folder`].
    pub(crate) fn root_folder(&self) -> Result<Folder, Errno> {
        let fd = rustix::fs::openat(&self.dir, ".", folder_flags(), Mode::empty())?;
        Ok(Folder { fd })
    }
}

impl Folder {
    /// The sub-folder `name` (one component, not `.` or `..`), opened through no symlink.
    pub(crate) fn folder(&self, name: &[u8]) -> Result<Folder, Errno> {
        debug_assert!(is_plain_name(name));
        let fd = rustix::fs::openat(&self.fd, name, folder_flags(), Mode::empty())?;
        Ok(Folder { fd })
    }

    /// The entries of the folder but `.` and `..`: for each, its name is appended to `names`
    /// (which may hold other bytes before) and its start recorded; the name runs to the next
    /// entry's start, or to the end of `names`. `scratch` is the `getdents64` buffer, kept
    /// between folders by the caller.
    pub(crate) fn entries(
        &self,
        names: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<Vec<FolderEntry>, Errno> {
        let mut out = Vec::new();
        scratch.clear();
        if scratch.capacity() < 32 << 10 {
            scratch.reserve(32 << 10);
        }
        let mut listed = rustix::fs::RawDir::new(&self.fd, scratch.spare_capacity_mut());
        while let Some(entry) = listed.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                kind = FileType::from_raw_mode(
                    rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?
                        .st_mode,
                );
            }
            out.push(FolderEntry {
                start: names.len(),
                kind,
            });
            names.extend_from_slice(name);
        }
        Ok(out)
    }

    /// Open the file `name` (one component) for reading; it must be a regular file. The
    /// folder listed it as one (the caller asks only then, as [`Tree::open_file`] asks after its
    /// `O_PATH` probe), it is opened through no symlink (`O_NOFOLLOW`), without blocking
    /// (`O_NONBLOCK`, `O_NOCTTY`: a FIFO or a device swapped in since cannot block or act),
    /// and the handle's own type is checked (`fstat`) before a byte is read: anything but a
    /// regular file is `ENOTSUP` here, and the caller asks [`Tree::open_file`] to name it.
    /// Returns the file and its `st_mode`.
    pub(crate) fn open_file(&self, name: &[u8]) -> Result<(File, u32), Errno> {
        debug_assert!(is_plain_name(name));
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Errno::NOTSUP);
        }
        Ok((File::from(fd), st.st_mode))
    }

    /// The target of the symlink `name` (one component), as bytes; the link is not followed.
    pub(crate) fn read_link(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        debug_assert!(is_plain_name(name));
        Ok(rustix::fs::readlinkat(&self.fd, name, Vec::new())?.into_bytes())
    }
}

/// One path component: not empty, not `.` or `..`, no `/`.
fn is_plain_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

/// Queue the components of `path` (at the front when `front`, keeping their order).
fn push_components(
    todo: &mut std::collections::VecDeque<(OsString, Option<PathBuf>)>,
    path: &[u8],
    via: Option<&PathBuf>,
    front: bool,
) {
    let parts: Vec<(OsString, Option<PathBuf>)> = Path::new(OsStr::from_bytes(path))
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .map(|n| (n, via.cloned()))
        .collect();
    if front {
        for part in parts.into_iter().rev() {
            todo.push_front(part);
        }
    } else {
        todo.extend(parts);
    }
}

/// Refuse `path` unless it is a regular file or a directory, without opening it: the type is
/// read with `stat` (a symlink named on a command line is followed, as the user named it), so
/// a FIFO cannot block and a device cannot act. Returns the metadata.
pub(crate) fn stat_file_or_dir(path: &Path) -> Result<std::fs::Metadata, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match Kind::of_std(meta.file_type()) {
        None | Some(Kind::Directory) => Ok(meta),
        Some(kind) => Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// Open `path` (named by the user, so symlinks are followed) for reading; it must be a regular
/// file. The type is checked before opening and again on the handle, and the open does not
/// block, so a FIFO, a socket or a device is refused at once.
pub(crate) fn open_regular(path: &Path) -> Result<File, Error> {
    let meta = stat_file_or_dir(path)?;
    if meta.is_dir() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind: Kind::Directory,
        });
    }
    open_checked(path, 0)
}

/// Open `path` for reading only if its last component is a regular file and no symlink; the
/// open does not block.
pub(crate) fn open_regular_nofollow(path: &Path) -> Result<File, Error> {
    open_checked(path, libc::O_NOFOLLOW)
}

fn open_checked(path: &Path, flags: i32) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if flags & libc::O_NOFOLLOW != 0 => Error::NotAFile {
                path: path.to_path_buf(),
                kind: Kind::Symlink,
            },
            _ => io(e),
        })?;
    let meta = file.metadata().map_err(io)?;
    match Kind::of_std(meta.file_type()) {
        None => Ok(file),
        Some(kind) => Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("out/sub")).unwrap();
        std::fs::write(root.join("out/fw.bin"), b"rebuilt").unwrap();
        std::fs::write(dir.path().join("host.bin"), b"shipped").unwrap();
        (dir, root)
    }

    fn read(o: Opened) -> Vec<u8> {
        let mut v = Vec::new();
        let mut f = o.file;
        f.read_to_end(&mut v).unwrap();
        v
    }

    /// Both resolvers, so the fallback is tested on a kernel that has openat2.
    fn open_both(t: &Tree, rel: &str, links: Links) -> Result<Opened, Error> {
        let fast = t.open_file(Path::new(rel), links);
        let slow = t.walk(Path::new(rel), links);
        assert_eq!(
            fast.as_ref().map(|_| ()).map_err(ToString::to_string),
            slow.as_ref().map(|_| ()).map_err(ToString::to_string),
            "{rel}"
        );
        if let (Ok(a), Ok(b)) = (&fast, &slow) {
            assert_eq!(a.resolved, b.resolved, "{rel}");
        }
        fast
    }

    #[test]
    fn opens_a_file_and_follows_links_that_stay_inside() {
        let (_d, root) = tree();
        symlink("fw.bin", root.join("out/link.bin")).unwrap();
        symlink("../../out/fw.bin", root.join("out/sub/up.bin")).unwrap();
        symlink("out", root.join("dir")).unwrap();
        let t = Tree::open(&root, "build tree").unwrap();
        for rel in [
            "out/fw.bin",
            "out/link.bin",
            "out/sub/up.bin",
            "dir/fw.bin",
            "./out/../out/fw.bin",
        ] {
            let o = open_both(&t, rel, Links::Inside).unwrap();
            assert_eq!(
                o.resolved.as_deref(),
                Some(Path::new("out/fw.bin")),
                "{rel}"
            );
            assert_eq!(read(o), b"rebuilt", "{rel}");
        }
    }

    #[test]
    fn refuses_links_that_leave_in_any_component() {
        let (d, root) = tree();
        let host = d.path();
        std::fs::create_dir(root.join("a")).unwrap();
        symlink(host, root.join("a/abs")).unwrap();
        symlink("../..", root.join("a/rel")).unwrap();
        symlink("../../tree/out", root.join("a/round")).unwrap();
        symlink(host.join("host.bin"), root.join("last.bin")).unwrap();
        let t = Tree::open(&root, "build tree").unwrap();
        for (rel, link) in [
            ("a/abs/host.bin", "a/abs"),
            ("a/rel/host.bin", "a/rel"),
            ("a/round/fw.bin", "a/round"),
            ("last.bin", "last.bin"),
        ] {
            let e = open_both(&t, rel, Links::Inside).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("`{link}` is a symlink that leaves the build tree"),
                "{rel}"
            );
            assert!(e.is_refusal());
        }
        let e = open_both(&t, "../host.bin", Links::Inside).unwrap_err();
        assert_eq!(e.to_string(), "`../host.bin` leaves the build tree");
    }

    #[test]
    fn names_what_is_not_a_regular_file() {
        let (_d, root) = tree();
        let fifo = std::ffi::CString::new(root.join("pipe").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        symlink("loop", root.join("loop")).unwrap();
        symlink("fw.bin", root.join("out/link.bin")).unwrap();
        let t = Tree::open(&root, "build tree").unwrap();
        let cases = [
            ("out", Links::Inside, "`out` is a directory"),
            ("pipe", Links::Inside, "`pipe` is a FIFO"),
            ("nothing", Links::Inside, "`nothing` does not exist"),
            (
                "out/fw.bin/x",
                Links::Inside,
                "`out/fw.bin` is not a directory",
            ),
            (
                "loop",
                Links::Inside,
                "`loop` passes through more than 40 symlinks",
            ),
            (
                "out/link.bin",
                Links::None,
                "`out/link.bin` is a symlink, and links are not followed here",
            ),
        ];
        for (rel, links, want) in cases {
            let e = open_both(&t, rel, links).unwrap_err();
            assert_eq!(e.to_string(), want, "{rel}");
        }
        assert_eq!(
            read(open_both(&t, "out/fw.bin", Links::None).unwrap()),
            b"rebuilt"
        );
    }

    #[test]
    fn a_symlinked_root_is_refused() {
        let (d, root) = tree();
        symlink(&root, d.path().join("alias")).unwrap();
        assert!(matches!(
            Tree::open(&d.path().join("alias"), "build tree"),
            Err(Error::NotADirectory { .. })
        ));
    }

    #[test]
    fn a_fifo_named_by_the_user_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pipe");
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = open_regular(&p).unwrap_err();
        assert!(e.to_string().ends_with("is a FIFO"), "{e}");
        assert!(stat_file_or_dir(Path::new("/dev/null")).is_err());
        assert!(stat_file_or_dir(d.path()).is_ok());
    }

    #[test]
    fn listing_names_files_beneath_and_follows_no_link() {
        let (dir, root) = tree();
        // Links out of the tree, to a folder and to a file, and one that stays inside.
        symlink(dir.path(), root.join("out/up")).unwrap();
        symlink("/etc", root.join("etc")).unwrap();
        symlink("fw.bin", root.join("out/inside.bin")).unwrap();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("a/b/c/deep.bin"), b"x").unwrap();
        let c = std::ffi::CString::new(root.join("out/fifo").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let t = Tree::open(&root, "build tree").unwrap();
        let mut files = t.list_files(1000, 32).files;
        files.sort();
        assert_eq!(
            files,
            [PathBuf::from("a/b/c/deep.bin"), PathBuf::from("out/fw.bin")]
        );
        // Bounded in depth and in entries, and says so.
        let shallow = t.list_files(1000, 1);
        assert!(shallow.truncated);
        assert_eq!(shallow.files, [PathBuf::from("out/fw.bin")]);
        assert!(t.list_files(2, 32).truncated);
    }
}
