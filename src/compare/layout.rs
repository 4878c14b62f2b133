//! The layout of a raw image: the ELF file `objcopy -O binary` made it from, used to locate
//! differing offsets by section and function. Used only when the image has exactly the size
//! the ELF file's loaded sections give; a note says why when it is not.

use std::path::Path;

use super::container::Blob;
use super::elf::ElfMap;

/// The layout of a raw image (`Options::layout`), read once per comparison.
pub(super) struct Layout {
    /// The ELF file, as reports name it.
    pub(super) elf: String,
    /// The top-level left file's name: the leaves the layout describes.
    pub(super) name: String,
    /// The image's map, or why there is none.
    pub(super) map: Result<ElfMap, &'static str>,
}

impl Layout {
    pub(super) fn read(elf: &Path, name: &str, shown_as: Option<String>) -> Layout {
        let map = match Blob::file(elf) {
            Err(_) => Err("cannot be read"),
            Ok(blob) => ElfMap::read(&blob)
                .ok_or("is no ELF file")
                .and_then(|m| m.image().ok_or("loads no section")),
        };
        Layout {
            elf: shown_as.unwrap_or_else(|| elf.display().to_string()),
            name: name.to_owned(),
            map,
        }
    }

    /// The image map for the leaf at `path` whose left side is `left`: the top-level file,
    /// its decompressed content, or a member named like it. A note says whether it was used.
    pub(super) fn map_for(
        &self,
        path: &str,
        left: &Blob,
        notes: &mut Vec<String>,
    ) -> Option<&ElfMap> {
        if path.rsplit('/').next() != Some(self.name.as_str()) {
            return None;
        }
        let elf = &self.elf;
        match &self.map {
            Err(why) => notes.push(format!("layout `{elf}` {why}: not used")),
            Ok(m) if m.image_len() != left.len => notes.push(format!(
                "layout `{elf}` describes an image of {} bytes, not {}: not used",
                m.image_len(),
                left.len
            )),
            Ok(m) => {
                notes.push(format!("offsets located by the sections of `{elf}`"));
                return Some(m);
            }
        }
        None
    }
}
