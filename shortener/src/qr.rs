//! QR codes of short URLs, drawn from the module matrix of the `qrcode` crate: SVG as one path in module units
//! (scaled by the viewer to exactly the requested size), PNG as 1-bit greyscale of exactly the requested size
//! with whole-pixel modules centred on a white square.

use qrcode::{Color, QrCode};

/// Light modules around the code that scanners need (the standard's quiet zone).
const QUIET_ZONE: usize = 4;

/// The modules of a QR code, with the quiet zone included.
pub struct Matrix {
    /// Modules per side.
    width: usize,
    /// Row-major, `true` for dark.
    dark: Vec<bool>,
}

impl Matrix {
    /// The QR code of `text` with medium error correction (the crate's default: readable when 15 % is damaged).
    ///
    /// # Errors
    /// When `text` is too long for any QR version.
    pub fn of(text: &str) -> Result<Self, qrcode::types::QrError> {
        let code = QrCode::new(text.as_bytes())?;
        let inner = code.width();
        let width = inner + 2 * QUIET_ZONE;
        let colors = code.into_colors();
        let mut dark = vec![false; width * width];
        for (index, color) in colors.iter().enumerate() {
            let (y, x) = (index / inner + QUIET_ZONE, index % inner + QUIET_ZONE);
            dark[y * width + x] = *color == Color::Dark;
        }
        Ok(Self { width, dark })
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width + x]
    }

    /// An SVG of `size` × `size` pixels: one path with a rectangle per horizontal run of dark modules.
    pub fn svg(&self, size: u32) -> String {
        let width = self.width;
        let mut path = String::new();
        for y in 0..width {
            let mut x = 0;
            while x < width {
                if !self.is_dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < width && self.is_dark(x, y) {
                    x += 1;
                }
                path.push_str(&format!("M{start} {y}h{}v1H{start}z", x - start));
            }
        }
        format!(
            concat!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" "#,
                r#"viewBox="0 0 {width} {width}" shape-rendering="crispEdges">"#,
                r##"<rect width="{width}" height="{width}" fill="#fff"/>"##,
                r##"<path fill="#000" d="{path}"/></svg>"##
            ),
            size = size,
            width = width,
            path = path
        )
    }

    /// A PNG of `size` × `size` pixels (larger only when `size` is below one pixel per module).
    ///
    /// # Errors
    /// When encoding fails (it writes to memory, so only on a bug).
    pub fn png(&self, size: u32) -> Result<Vec<u8>, png::EncodingError> {
        let modules = u32::try_from(self.width).unwrap_or(u32::MAX);
        let scale = (size / modules).max(1);
        let side = size.max(modules * scale);
        let offset = (side - modules * scale) / 2;
        // One bit per pixel (1 = white): an eighth of the bytes to compress, which is most of the cost. Every
        // pixel row of a module row is the same, so each is drawn once and copied.
        let row_bytes = (side as usize).div_ceil(8);
        let mut pixels = vec![0xffu8; row_bytes * side as usize];
        let mut drawn: Option<(usize, Vec<u8>)> = None;
        for (py, row) in pixels.chunks_exact_mut(row_bytes).enumerate() {
            let Some(y) = module_at(py as u32, offset, scale, modules) else {
                continue;
            };
            if drawn.as_ref().is_none_or(|(drawn_y, _)| *drawn_y != y) {
                drawn = Some((
                    y,
                    self.pixel_row(y, row_bytes, side, offset, scale, modules),
                ));
            }
            if let Some((_, bits)) = &drawn {
                row.copy_from_slice(bits);
            }
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        // Long runs of one colour compress well even with the fast DEFLATE made for PNG, at a fraction of the time.
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
        Ok(out)
    }
}

impl Matrix {
    /// The packed 1-bit pixels of one row of module row `y`.
    fn pixel_row(
        &self,
        y: usize,
        row_bytes: usize,
        side: u32,
        offset: u32,
        scale: u32,
        modules: u32,
    ) -> Vec<u8> {
        let mut row = vec![0xffu8; row_bytes];
        for px in 0..side {
            if module_at(px, offset, scale, modules).is_some_and(|x| self.is_dark(x, y)) {
                row[px as usize / 8] &= !(0x80 >> (px % 8));
            }
        }
        row
    }
}

/// The module under pixel `pixel`, if it falls inside the code.
fn module_at(pixel: u32, offset: u32, scale: u32, modules: u32) -> Option<usize> {
    let module = pixel.checked_sub(offset)? / scale;
    (module < modules).then_some(module as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dark modules an SVG path of `M{x} {y}h{len}v1H{x}z` runs covers.
    fn dark_modules_of(svg: &str) -> Vec<(usize, usize)> {
        let path = svg
            .split(r#"d=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a path");
        let mut dark = Vec::new();
        for run in path.split('M').filter(|run| !run.is_empty()) {
            let (start, rest) = run.split_once('h').expect("h");
            let (x, y) = start.split_once(' ').expect("x y");
            let len = rest.split_once('v').expect("v").0;
            let (x, y, len): (usize, usize, usize) = (
                x.parse().expect("x"),
                y.parse().expect("y"),
                len.parse().expect("len"),
            );
            dark.extend((x..x + len).map(|x| (x, y)));
        }
        dark
    }

    #[test]
    fn the_svg_path_covers_exactly_the_dark_modules() {
        let matrix = Matrix::of("http://127.0.0.1:8081/8M0kX2aQ1b").expect("a code");
        let svg = matrix.svg(200);

        let mut expected = Vec::new();
        for y in 0..matrix.width {
            for x in 0..matrix.width {
                if matrix.is_dark(x, y) {
                    expected.push((x, y));
                }
            }
        }
        let mut drawn = dark_modules_of(&svg);
        drawn.sort_by_key(|&(x, y)| (y, x));
        assert_eq!(drawn, expected);
        assert!(svg.contains(r#"width="200" height="200""#));
        let viewbox = format!(r#"viewBox="0 0 {0} {0}""#, matrix.width);
        assert!(svg.contains(&viewbox), "{svg}");
    }

    #[test]
    fn the_quiet_zone_is_light() {
        let matrix = Matrix::of("https://example.com/").expect("a code");
        for i in 0..matrix.width {
            for edge in 0..QUIET_ZONE {
                assert!(!matrix.is_dark(i, edge) && !matrix.is_dark(edge, i));
                let far = matrix.width - 1 - edge;
                assert!(!matrix.is_dark(i, far) && !matrix.is_dark(far, i));
            }
        }
    }

    #[test]
    fn a_png_smaller_than_one_pixel_per_module_gets_one_pixel_per_module() {
        let matrix = Matrix::of("https://example.com/").expect("a code");
        let png = matrix.png(10).expect("encoded");
        let reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .expect("a PNG");
        let side = u32::try_from(matrix.width).expect("small");
        assert_eq!((reader.info().width, reader.info().height), (side, side));
    }
}
