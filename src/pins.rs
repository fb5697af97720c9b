//! Pins: named lists of store paths stored in the cache itself (`narscope/roots/<name>`),
//! shared by everyone who operates the bucket; gc keeps each pinned path with its closure and
//! delete refuses to remove a pinned path. Both read them through this module, which sits below
//! both (it needs only the storage layer).

use crate::storage::{PutCondition, PutOptions, Store, StoreError, is_temp_litter};

/// Why reading, writing or removing a pin failed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// A request to the cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A pin name, a pin's text or a store path in it is not what it must be (the message
    /// names it, the line and the cause).
    #[error("{0}")]
    Invalid(String),
    /// The cache did not do what was asked of one pin object (the message names it and says
    /// why): a pin that vanished while read, or could not be removed.
    #[error("{0}")]
    Failed(String),
}

/// Where pins live in the cache.
pub const PINS_PREFIX: &str = "narscope/roots/";

/// A named pin: a list of store paths kept with their closures.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pin {
    /// The pin's name: its key is `narscope/roots/<name>`.
    pub name: String,
    /// The store paths.
    pub paths: Vec<String>,
}

/// Why a pin name is refused.
pub fn check_pin_name(name: &str) -> Result<(), PinError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(PinError::Invalid(format!(
            "'{name}' is not a pin name (letters, digits and - _ . + @, not starting with a dot)"
        )))
    }
}

/// The text of a pin object.
pub fn pin_text(paths: &[String]) -> String {
    let mut t = String::from("# narscope pin: store paths kept, with their closures, by gc\n");
    for p in paths {
        t.push_str(p);
        t.push('\n');
    }
    t
}

/// Parse a pin object (store paths, one a line; `#` comments).
pub fn parse_pin(name: &str, text: &str) -> Result<Pin, PinError> {
    Ok(Pin {
        name: name.to_string(),
        paths: parse_paths(&format!("pin {name}"), text)?,
    })
}

/// Every pin of the cache.
pub async fn list_pins(store: &dyn Store) -> Result<Vec<Pin>, PinError> {
    let mut pins = Vec::new();
    let mut token = None;
    loop {
        let page = store.list_page(PINS_PREFIX, token).await?;
        for o in &page.objects {
            let name = o.key.strip_prefix(PINS_PREFIX).unwrap_or(&o.key);
            if name.contains('/') || is_temp_litter(name) || check_pin_name(name).is_err() {
                continue;
            }
            let obj = store.get(&o.key).await?.ok_or_else(|| {
                PinError::Failed(format!("pin {name} disappeared while being read"))
            })?;
            pins.push(parse_pin(name, &String::from_utf8_lossy(&obj.bytes))?);
        }
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    pins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pins)
}

/// Create or replace a pin.
pub async fn write_pin(store: &dyn Store, name: &str, paths: &[String]) -> Result<(), PinError> {
    check_pin_name(name)?;
    for p in paths {
        crate::nix::StorePath::parse_any(p).map_err(|e| PinError::Invalid(format!("{p}: {e}")))?;
    }
    store
        .put(
            &format!("{PINS_PREFIX}{name}"),
            pin_text(paths).into_bytes().into(),
            &PutOptions {
                content_type: Some("text/plain".into()),
                condition: PutCondition::None,
                ..PutOptions::default()
            },
        )
        .await?;
    Ok(())
}

/// Remove a pin; false if there was none.
pub async fn remove_pin(store: &dyn Store, name: &str) -> Result<bool, PinError> {
    check_pin_name(name)?;
    let key = format!("{PINS_PREFIX}{name}");
    if store.head(&key).await?.is_none() {
        return Ok(false);
    }
    let rep = store.delete_many(std::slice::from_ref(&key)).await?;
    if let Some((_, why)) = rep.failed.first() {
        return Err(PinError::Failed(why.clone()));
    }
    Ok(true)
}

/// Store paths one a line, blank lines and `#` comments skipped; errors name `what` and the
/// line.
pub fn parse_paths(what: &str, text: &str) -> Result<Vec<String>, PinError> {
    let mut paths = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        crate::nix::StorePath::parse_any(l)
            .map_err(|e| PinError::Invalid(format!("{what}, line {}: {e}", i + 1)))?;
        paths.push(l.to_string());
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_and_names_are_checked() {
        let p = parse_pin(
            "rel",
            "# c\n/nix/store/7mykfhyl4pazcsisxzsv1n1163xd1gzx-a\n\n",
        )
        .unwrap();
        assert_eq!(p.paths.len(), 1);
        assert!(
            parse_pin("rel", "not a path\n")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
        assert!(check_pin_name("release-2026.12").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "sp ace"] {
            assert!(check_pin_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_pin(
                "x",
                &pin_text(&["/nix/store/7mykfhyl4pazcsisxzsv1n1163xd1gzx-a".into()])
            )
            .unwrap()
            .paths
            .len(),
            1
        );
    }
}
