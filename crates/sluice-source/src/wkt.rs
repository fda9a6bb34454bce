//! MySQL/MariaDB spatial values → WKT text.
//!
//! Both servers store a geometry as a 4-byte little-endian SRID followed by
//! the geometry's WKB, and send exactly those bytes over the binary protocol
//! (snapshot) and in row events (binlog). This module turns them into the
//! text `ST_AsText` prints: `POINT(1 2)`, `MULTIPOINT((1 1),(2 2))`, ...,
//! prefixed with `SRID=n;` (PostGIS' EWKT convention) when the SRID is not 0.
//! Coordinates are printed as the shortest decimal text that reads back as
//! the same `f64`, in storage order (x y; for MySQL's geographic SRSs that is
//! longitude latitude, i.e. `ST_AsText(g, 'axis-order=long-lat')`).

/// Converts the stored bytes of a spatial value to (E)WKT; `Err` names what is malformed.
pub fn to_wkt(stored: &[u8]) -> Result<String, String> {
    if stored.len() < 4 {
        return Err(format!("spatial value of {} bytes is too short", stored.len()));
    }
    let srid = u32::from_le_bytes(stored[..4].try_into().unwrap());
    let mut r = Reader { b: &stored[4..], pos: 0 };
    let mut out = String::new();
    if srid != 0 {
        out.push_str(&format!("SRID={srid};"));
    }
    r.geometry(&mut out, 0)?;
    if r.pos != r.b.len() {
        return Err(format!("{} trailing bytes after the geometry", r.b.len() - r.pos));
    }
    Ok(out)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.b.get(self.pos..self.pos + N).ok_or("truncated WKB")?;
        self.pos += N;
        Ok(s.try_into().unwrap())
    }

    fn u32(&mut self, le: bool) -> Result<u32, String> {
        let b = self.take::<4>()?;
        Ok(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    fn f64(&mut self, le: bool) -> Result<f64, String> {
        let b = self.take::<8>()?;
        Ok(if le { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) })
    }

    fn count(&mut self, le: bool) -> Result<usize, String> {
        let n = self.u32(le)? as usize;
        // Every element takes at least 16 bytes (a point); reject counts the remaining bytes cannot hold.
        if n > self.b.len().saturating_sub(self.pos) {
            return Err(format!("WKB count {n} exceeds the value's size"));
        }
        Ok(n)
    }

    fn point(&mut self, out: &mut String, le: bool) -> Result<(), String> {
        let x = self.f64(le)?;
        let y = self.f64(le)?;
        out.push_str(&coord(x));
        out.push(' ');
        out.push_str(&coord(y));
        Ok(())
    }

    fn points(&mut self, out: &mut String, le: bool) -> Result<(), String> {
        let n = self.count(le)?;
        out.push('(');
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            self.point(out, le)?;
        }
        out.push(')');
        Ok(())
    }

    fn rings(&mut self, out: &mut String, le: bool) -> Result<(), String> {
        let n = self.count(le)?;
        out.push('(');
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            self.points(out, le)?;
        }
        out.push(')');
        Ok(())
    }

    /// One WKB geometry: byte order, type, body.
    fn geometry(&mut self, out: &mut String, depth: u32) -> Result<(), String> {
        if depth > 64 {
            return Err("geometry nested too deeply".into());
        }
        let [order] = self.take::<1>()?;
        let le = match order {
            1 => true,
            0 => false,
            o => return Err(format!("bad WKB byte order {o}")),
        };
        let kind = self.u32(le)?;
        match kind {
            1 => {
                out.push_str("POINT(");
                self.point(out, le)?;
                out.push(')');
            }
            2 => {
                out.push_str("LINESTRING");
                self.points(out, le)?;
            }
            3 => {
                out.push_str("POLYGON");
                self.rings(out, le)?;
            }
            4..=7 => {
                out.push_str(match kind {
                    4 => "MULTIPOINT",
                    5 => "MULTILINESTRING",
                    6 => "MULTIPOLYGON",
                    _ => "GEOMETRYCOLLECTION",
                });
                let n = self.count(le)?;
                if n == 0 && kind == 7 {
                    out.push_str(" EMPTY");
                    return Ok(());
                }
                out.push('(');
                for i in 0..n {
                    if i > 0 {
                        out.push(',');
                    }
                    let mut member = String::new();
                    self.geometry(&mut member, depth + 1)?;
                    if kind == 7 {
                        out.push_str(&member);
                    } else {
                        // Members of MULTI* types are written without their type name.
                        let body = member.trim_start_matches(|c: char| c.is_ascii_uppercase());
                        out.push_str(body);
                    }
                }
                out.push(')');
            }
            k => return Err(format!("unknown WKB geometry type {k}")),
        }
        Ok(())
    }
}

/// The shortest text that reads back as `v`: plain notation for moderate
/// exponents, `<mantissa>e<exp>` otherwise (as MySQL prints coordinates).
fn coord(v: f64) -> String {
    if v == 0.0 {
        return "0".into(); // also -0
    }
    let sci = format!("{v:e}");
    let exp: i32 = sci.split_once('e').and_then(|(_, e)| e.parse().ok()).unwrap_or(0);
    if (-5..15).contains(&exp) {
        format!("{v}")
    } else {
        sci
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkb_point(x: f64, y: f64) -> Vec<u8> {
        let mut b = vec![1, 1, 0, 0, 0];
        b.extend_from_slice(&x.to_le_bytes());
        b.extend_from_slice(&y.to_le_bytes());
        b
    }

    #[test]
    fn points_multipoints_and_srid() {
        let mut v = 0u32.to_le_bytes().to_vec();
        v.extend(wkb_point(1.0, -2.5));
        assert_eq!(to_wkt(&v).unwrap(), "POINT(1 -2.5)");
        let mut v = 3857u32.to_le_bytes().to_vec();
        v.extend([1, 4, 0, 0, 0, 2, 0, 0, 0]);
        v.extend(wkb_point(1.0, 1.0));
        v.extend(wkb_point(1e300, 0.1 + 0.2));
        assert_eq!(to_wkt(&v).unwrap(), "SRID=3857;MULTIPOINT((1 1),(1e300 0.30000000000000004))");
        assert!(to_wkt(&v[..v.len() - 1]).is_err());
        assert!(to_wkt(&[0, 0, 0, 0, 1, 4, 0, 0, 0, 255, 255, 255, 255]).is_err());
        let mut gc = 0u32.to_le_bytes().to_vec();
        gc.extend([1, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(to_wkt(&gc).unwrap(), "GEOMETRYCOLLECTION EMPTY");
    }
}
