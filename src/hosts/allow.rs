//! The folders a host runs sessions in: an allow-list kept on the host
//! itself, so that no session manager (whatever it was told, whatever it
//! says) can make the host run a session anywhere else.

use std::path::{Path, PathBuf};

/// The folders a host serves; empty: any folder of its machine (the
/// session manager's own host, whose user launches runs with its token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    folders: Vec<PathBuf>,
}

impl AllowList {
    /// Any folder.
    pub fn any() -> AllowList {
        AllowList::default()
    }

    /// The folders `dirs`, each as the file system names it (symbolic
    /// links resolved): each must be a folder that exists.
    pub fn of(dirs: &[PathBuf]) -> Result<AllowList, String> {
        let folders = dirs
            .iter()
            .map(|dir| {
                let real = dir
                    .canonicalize()
                    .map_err(|e| format!("project folder {}: {e}", dir.display()))?;
                if !real.is_dir() {
                    return Err(format!("project folder {} is not a folder", dir.display()));
                }
                Ok(real)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList { folders })
    }

    /// The folders, as registered.
    pub fn texts(&self) -> Vec<String> {
        self.folders
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    /// The folder `dir` as the file system names it now, if this host
    /// serves it; else why not, in one line.
    pub fn check(&self, host: &str, dir: Option<&str>) -> Result<PathBuf, String> {
        let Some(dir) = dir else {
            return Err(format!(
                "host '{host}' was given a run without a project folder"
            ));
        };
        let path = Path::new(dir);
        if !path.is_absolute() {
            return Err(format!(
                "host '{host}' runs sessions in absolute folders only, not {dir}"
            ));
        }
        let real = path.canonicalize().ok().filter(|p| p.is_dir());
        match real {
            Some(real) if self.folders.is_empty() || self.folders.contains(&real) => Ok(real),
            _ if self.folders.is_empty() => Err(format!("host '{host}' has no folder {dir}")),
            _ => Err(format!(
                "host '{host}' does not serve {dir}; it runs sessions only in {} (its --project folders)",
                self.texts().join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_declared_folders_pass_as_they_are_now() {
        let root = tempfile::tempdir().unwrap();
        let served = root.path().join("served");
        let other = root.path().join("other");
        std::fs::create_dir_all(&served).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let list = AllowList::of(std::slice::from_ref(&served)).unwrap();
        let text = |p: &Path| p.to_string_lossy().into_owned();
        assert!(list.check("h", Some(&text(&served))).is_ok());
        let e = list.check("h", Some(&text(&other))).unwrap_err();
        assert!(e.contains("does not serve") && e.contains("served"), "{e}");
        // A way round through a parent or a link leads where it leads.
        let sneaky = served.join("..").join("other");
        assert!(list.check("h", Some(&text(&sneaky))).is_err());
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        assert!(list.check("h", Some(&text(&link))).is_err());
        assert!(list.check("h", Some("relative")).is_err());
        assert!(list.check("h", None).is_err());
        assert!(AllowList::any().check("h", Some(&text(&other))).is_ok());
        assert!(
            AllowList::any()
                .check("h", Some("/no/such/folder"))
                .is_err()
        );
        assert!(AllowList::of(&[root.path().join("missing")]).is_err());
    }
}
