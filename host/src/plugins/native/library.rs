//! Native libraries on disk and in memory: the artifact written under its
//! SHA-256, one `dlopen` per file shared by every activation that uses it
//! (the seed's `PluginLibraryCache`), closed when the last activation and
//! instance holding it are gone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use stabby::libloading::StabbyLibrary;
use vaultaris_plugin_sdk::native::abi::{
    ABI_VERSION, ENTRY_SYMBOL, EntryFn, FLAG_PANIC_UNWIND, FactoryAbiDyn, FactoryHandle,
    HostHandle, InstanceHandle,
};

use crate::plugins::manifest::{Category, PluginManifest};

/// What a library says about itself (its `NativeManifest`, copied out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryManifest {
    /// ABI version of the SDK it was built with.
    pub abi_version: u32,
    /// Whether it was built with `panic = "unwind"`.
    pub panic_unwind: bool,
    /// Plugin id.
    pub id: String,
    /// Plugin version.
    pub version: String,
    /// Contract version.
    pub contract: String,
    /// SDK version.
    pub sdk_version: String,
    /// Exported categories.
    pub categories: Vec<Category>,
}

/// A loaded library and its factory.
pub struct NativeLibrary {
    // Field order is drop order: the factory's code lives in the library,
    // so it is dropped before the library is closed.
    factory: FactoryHandle,
    /// What the library says it is.
    pub manifest: LibraryManifest,
    /// The file it was loaded from.
    pub path: PathBuf,
    _library: libloading::Library,
}

impl std::fmt::Debug for NativeLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeLibrary")
            .field("path", &self.path)
            .field("manifest", &self.manifest)
            .finish()
    }
}

// SAFETY: the factory is a `Box<dyn FactoryAbi + Send + Sync>` (the bounds
// are in its stabby vtable, not in the Rust type) and the library handle is
// only closed on drop.
unsafe impl Send for NativeLibrary {}
// SAFETY: as above; `FactoryAbi` methods take `&self`.
unsafe impl Sync for NativeLibrary {}

impl NativeLibrary {
    /// Opens a library, checks its entry point's layout and reads its
    /// manifest.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        // SAFETY: loading a library runs its initialisers: native plugins
        // are trusted code the operator opted in to (see the module docs).
        let library = unsafe { libloading::Library::new(path) }
            .with_context(|| format!("loading {}", path.display()))?;
        let entry: EntryFn = {
            // SAFETY: `get_stabbied` compares stabby's report of the
            // symbol's type with `EntryFn`'s before handing it out.
            let symbol = unsafe { library.get_stabbied::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }
                .map_err(|e| {
                    anyhow::anyhow!(
                        "the library has no entry point {ENTRY_SYMBOL} compatible with this server \
                         (native ABI v{ABI_VERSION}): {e}; rebuild it with this server's \
                         vaultaris-plugin-sdk"
                    )
                })?;
            *symbol
        };
        let factory = entry();
        let m = factory.manifest();
        let categories = Category::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| m.categories & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect();
        let manifest = LibraryManifest {
            abi_version: m.abi_version,
            panic_unwind: m.flags & FLAG_PANIC_UNWIND != 0,
            id: m.id.as_str().to_owned(),
            version: m.version.as_str().to_owned(),
            contract: m.contract.as_str().to_owned(),
            sdk_version: m.sdk_version.as_str().to_owned(),
            categories,
        };
        Ok(Self {
            factory,
            manifest,
            path: path.to_owned(),
            _library: library,
        })
    }

    /// Refuses a library whose own manifest disagrees with `manifest.json`
    /// on what decides whether it can run: ABI, contract, categories and
    /// version.
    pub fn check(&self, manifest: &PluginManifest) -> anyhow::Result<()> {
        let m = &self.manifest;
        if m.abi_version != ABI_VERSION {
            bail!(
                "the library was built for native ABI v{}, this server speaks v{ABI_VERSION}",
                m.abi_version
            );
        }
        if !m.panic_unwind {
            bail!(
                "the library was built with panic = \"abort\": a panic in it would end the \
                 server; build it with the default panic = \"unwind\""
            );
        }
        if m.contract != manifest.contract {
            bail!(
                "the library was built against contract {} but the manifest declares {}",
                m.contract,
                manifest.contract
            );
        }
        // The id is not compared: like a component, one library may be
        // installed under several ids (two independent providers of one
        // tenant, say). The library's own id is in the install log.
        if m.version != manifest.version {
            bail!(
                "the library is version {} but the manifest declares {}",
                m.version,
                manifest.version
            );
        }
        let mut declared = manifest.categories.clone();
        declared.sort();
        declared.dedup();
        if m.categories != declared {
            let list = |s: &[Category]| s.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
            bail!(
                "the manifest declares [{}] but the library exports [{}]",
                list(&declared),
                list(&m.categories)
            );
        }
        Ok(())
    }

    /// A new instance whose capabilities go to `host`.
    pub fn create(&self, host: HostHandle) -> InstanceHandle {
        self.factory.create(host)
    }
}

/// Writes a library under `<cache>/native/<sha256>.so` (once; an existing
/// file is kept only if its hash still matches) and returns its path.
pub fn store_artifact(cache_dir: &Path, sha256: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    if !sha256.bytes().all(|b| b.is_ascii_hexdigit()) || sha256.len() != 64 {
        bail!("invalid SHA-256 {sha256:?}");
    }
    let dir = cache_dir.join("native");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let path = dir.join(format!("{}.so", sha256.to_ascii_lowercase()));
    if let Ok(existing) = std::fs::read(&path)
        && hex::encode(Sha256::digest(&existing)).eq_ignore_ascii_case(sha256)
    {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{}.{}.tmp", sha256, uuid::Uuid::new_v4()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(path)
}

/// Open libraries by path: one `dlopen` per file however many tenants use
/// it; a library is closed when nothing holds it any more.
#[derive(Debug, Default)]
pub struct NativeLibraryCache {
    open: Mutex<HashMap<PathBuf, Weak<NativeLibrary>>>,
}

impl NativeLibraryCache {
    /// The library at `path`, opened now or shared with its current users.
    /// The file's hash is checked against `sha256` before a fresh `dlopen`.
    pub fn open(&self, path: &Path, sha256: &str) -> anyhow::Result<Arc<NativeLibrary>> {
        let mut open = self.open.lock().expect("library cache lock");
        if let Some(lib) = open.get(path).and_then(Weak::upgrade) {
            return Ok(lib);
        }
        open.retain(|_, w| w.strong_count() > 0);
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if !hex::encode(Sha256::digest(&bytes)).eq_ignore_ascii_case(sha256) {
            bail!(
                "{} no longer has SHA-256 {sha256}; refusing to load it",
                path.display()
            );
        }
        let lib = Arc::new(NativeLibrary::open(path)?);
        open.insert(path.to_owned(), Arc::downgrade(&lib));
        Ok(lib)
    }

    /// How many libraries are open now.
    pub fn open_count(&self) -> usize {
        self.open
            .lock()
            .expect("library cache lock")
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}
