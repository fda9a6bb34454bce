//! GTID bookkeeping: MySQL GTID sets (`uuid[:tag]:1-5:7`) and MariaDB GTID
//! positions (`domain-server-seq` per domain), advanced as transactions commit
//! so that a checkpoint records the exact executed set before its position.

use std::collections::BTreeMap;

/// A MySQL GTID set, keyed by `uuid` or `uuid:tag`, with sorted disjoint intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    sets: BTreeMap<String, Vec<(u64, u64)>>,
}

impl GtidSet {
    /// Parses `@@gtid_executed` text. Tagged GTIDs (`uuid:tag:1-3`) are kept per tag.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = GtidSet::default();
        for part in text.split(',').map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let uuid = fields.next().unwrap_or_default().to_ascii_lowercase();
            if uuid.len() != 36 {
                return Err(format!("bad GTID set element {part:?}"));
            }
            let mut key = uuid.clone();
            for f in fields {
                if f.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    let (a, b) = f.split_once('-').unwrap_or((f, f));
                    let a: u64 = a.parse().map_err(|_| format!("bad GTID interval {f:?}"))?;
                    let b: u64 = b.parse().map_err(|_| format!("bad GTID interval {f:?}"))?;
                    set.add_range(&key, a, b);
                } else {
                    key = format!("{uuid}:{}", f.to_ascii_lowercase());
                }
            }
        }
        Ok(set)
    }

    /// The set as `COM_BINLOG_DUMP_GTID` carries it: one SID block per
    /// `uuid[:tag]`, intervals half-open.
    pub fn sids(&self) -> Result<Vec<mysql_common::packets::Sid<'static>>, String> {
        use mysql_common::packets::{GnoInterval, Sid, Tag};
        self.sets
            .iter()
            .map(|(key, intervals)| {
                let (uuid, tag) = match key.split_once(':') {
                    Some((u, t)) => (u, Some(t)),
                    None => (key.as_str(), None),
                };
                let hex: String = uuid.chars().filter(|c| *c != '-').collect();
                let mut bytes = [0u8; 16];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = hex
                        .get(2 * i..2 * i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| format!("bad GTID uuid {uuid:?}"))?;
                }
                let mut sid = Sid::new(bytes).with_intervals(intervals.iter().map(|(a, b)| GnoInterval::new(*a, b + 1)).collect());
                if let Some(t) = tag {
                    sid = sid.with_tag(Tag::new(t.to_string()).map_err(|e| format!("bad GTID tag {t:?}: {e}"))?);
                }
                Ok(sid)
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn add(&mut self, key: &str, gno: u64) {
        self.add_range(key, gno, gno);
    }

    fn add_range(&mut self, key: &str, a: u64, b: u64) {
        let v = self.sets.entry(key.to_string()).or_default();
        v.push((a, b));
        v.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (s, e) in v.drain(..) {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *v = merged;
    }
}

impl std::fmt::Display for GtidSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .sets
            .iter()
            .map(|(k, iv)| {
                let ranges: Vec<String> = iv.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
                format!("{k}:{}", ranges.join(":"))
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A MariaDB GTID position: the last GTID of each replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MariaGtidPos {
    domains: BTreeMap<u32, (u32, u64)>,
}

impl MariaGtidPos {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pos = MariaGtidPos::default();
        for part in text.split(',').map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let f: Vec<&str> = part.split('-').collect();
            let bad = || format!("bad MariaDB GTID {part:?}");
            if f.len() != 3 {
                return Err(bad());
            }
            let d = f[0].parse().map_err(|_| bad())?;
            let s = f[1].parse().map_err(|_| bad())?;
            let n = f[2].parse().map_err(|_| bad())?;
            pos.domains.insert(d, (s, n));
        }
        Ok(pos)
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    pub fn set(&mut self, domain: u32, server: u32, seq: u64) {
        self.domains.insert(domain, (server, seq));
    }
}

impl std::fmt::Display for MariaGtidPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.domains.iter().map(|(d, (s, n))| format!("{d}-{s}-{n}")).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_sets_merge_and_print() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let mut s = GtidSet::parse(&format!("{u}:1-5:7, {u}:tag1:3")).unwrap();
        s.add(u, 6);
        s.add(&format!("{u}:tag1"), 4);
        assert_eq!(s.to_string(), format!("{u}:1-7,{u}:tag1:3-4"));
        assert!(GtidSet::parse("nope:1").is_err());
        assert_eq!(GtidSet::parse("").unwrap().to_string(), "");
        let sids = s.sids().unwrap();
        assert_eq!(sids.len(), 2);
        assert_eq!(sids[0].uuid()[..3], [0x3e, 0x11, 0xfa]);
        assert_eq!((sids[0].intervals()[0].start(), sids[0].intervals()[0].end()), (1, 8), "intervals are half-open on the wire");
        assert_eq!(sids[1].tag().map(|t| t.as_str()), Some("tag1"));
    }

    #[test]
    fn mariadb_positions() {
        let mut p = MariaGtidPos::parse("0-1-100,1-2-5").unwrap();
        p.set(0, 1, 101);
        assert_eq!(p.to_string(), "0-1-101,1-2-5");
        assert!(MariaGtidPos::parse("0-1").is_err());
    }
}
