//! Writing narinfo text: fresh narinfos in Nix's field order, and minimal edits of parsed
//! ones, which rewrite only the lines whose values changed.

use super::NarInfo;
use super::parse::{FIELDS, Field, lines, parse_fields};

impl NarInfo {
    /// The narinfo text. A parsed narinfo with unchanged values comes back byte for
    /// byte; changed values rewrite only their own lines (unknown lines, order and
    /// encodings of untouched fields are kept). A fresh one is written in Nix's order.
    pub fn to_text(&self) -> String {
        let Some(raw) = &self.raw else {
            return self.render_fresh();
        };
        let Ok(orig) = parse_fields(raw, "") else {
            return self.render_fresh();
        };
        if self.fields_eq(&orig) {
            return raw.clone();
        }
        self.render_edited(raw, &orig)
    }

    pub(super) fn fields_eq(&self, o: &NarInfo) -> bool {
        FIELDS
            .iter()
            .all(|&f| f == Field::Sig || !self.field_changed(f, o))
            && self.sigs == o.sigs
    }

    fn field_changed(&self, f: Field, o: &NarInfo) -> bool {
        match f {
            Field::StorePath => {
                self.store_path != o.store_path || self.store_dir() != o.store_dir()
            }
            Field::Url => self.url != o.url,
            Field::Compression => self.compression != o.compression,
            Field::FileHash => self.file_hash != o.file_hash,
            Field::FileSize => self.file_size != o.file_size,
            Field::NarHash => self.nar_hash != o.nar_hash,
            Field::NarSize => self.nar_size != o.nar_size,
            Field::References => self.references != o.references,
            Field::Deriver => self.deriver != o.deriver,
            Field::System => self.system != o.system,
            Field::Sig => self.sigs != o.sigs,
            Field::Ca => self.ca != o.ca,
        }
    }

    /// The line for a single-valued field (without `\n`), or `None` if unset.
    fn render_field(&self, f: Field) -> Option<String> {
        let value = match f {
            Field::StorePath => self.absolute_path(),
            Field::Url => self.url.clone(),
            Field::Compression => self.compression.clone()?,
            Field::FileHash => self.file_hash.as_ref()?.to_nix32(),
            Field::FileSize => self.file_size?.to_string(),
            Field::NarHash => self.nar_hash.to_nix32(),
            Field::NarSize => self.nar_size.to_string(),
            Field::References => {
                let mut s = String::with_capacity(self.references.len() * 50);
                for (i, r) in self.references.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    s.push_str(r.as_base_name());
                }
                s
            }
            Field::Deriver => self.deriver.as_ref()?.base_name(),
            Field::System => self.system.clone()?,
            Field::Ca => self.ca.as_ref()?.to_string(),
            Field::Sig => return None,
        };
        Some(format!("{}: {value}", f.name()))
    }

    fn render_fresh(&self) -> String {
        let mut out = String::with_capacity(512 + self.references.len() * 50);
        for f in FIELDS {
            if f == Field::Sig {
                for s in &self.sigs {
                    out.push_str("Sig: ");
                    out.push_str(s);
                    out.push('\n');
                }
            } else if let Some(line) = self.render_field(f) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    fn render_edited(&self, raw: &str, orig: &NarInfo) -> String {
        let mut out: Vec<(Option<Field>, String)> = Vec::new();
        let mut handled = [false; FIELDS.len()];
        for line in lines(raw).filter_map(Result::ok) {
            let field = Field::from_name(line.name);
            match field {
                None => out.push((None, line.text.to_owned())),
                Some(Field::Sig) => {
                    if self.sigs.iter().any(|s| s == line.value) {
                        out.push((field, line.text.to_owned()));
                    }
                }
                Some(f) if !self.field_changed(f, orig) => {
                    out.push((field, line.text.to_owned()));
                }
                Some(f) => {
                    if let Some(done) = handled.get_mut(f.rank())
                        && !*done
                    {
                        *done = true;
                        if let Some(new) = self.render_field(f) {
                            out.push((field, new));
                        }
                    }
                }
            }
        }
        for f in FIELDS {
            let done = handled.get(f.rank()).copied().unwrap_or(true);
            if f != Field::Sig
                && !done
                && self.field_changed(f, orig)
                && let Some(new) = self.render_field(f)
            {
                insert_in_order(&mut out, f, new);
            }
        }
        for s in &self.sigs {
            if !orig.sigs.contains(s) {
                insert_in_order(&mut out, Field::Sig, format!("Sig: {s}"));
            }
        }
        let mut text = String::with_capacity(raw.len() + 128);
        for (_, l) in out {
            text.push_str(&l);
            text.push('\n');
        }
        text
    }
}

/// Inserts a line for `f`: after the last line of the same field, else after the
/// last known line that Nix writes before `f`, else before the first known line.
fn insert_in_order(out: &mut Vec<(Option<Field>, String)>, f: Field, line: String) {
    let pos = out
        .iter()
        .rposition(|(g, _)| *g == Some(f))
        .or_else(|| {
            out.iter()
                .rposition(|(g, _)| g.is_some_and(|g| g.rank() < f.rank()))
        })
        .map(|i| i + 1)
        .or_else(|| out.iter().position(|(g, _)| g.is_some()))
        .unwrap_or(out.len());
    out.insert(pos, (Some(f), line));
}
