//! QR codes of short URLs, drawn from the module matrix of the `qrcode` crate: SVG as one path in module units
//! (scaled by the viewer to exactly the requested size), PNG as 8-bit greyscale of exactly the requested size
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
        let side_px = side as usize;
        let mut pixels = vec![255u8; side_px * side_px];
        for (py, row) in pixels.chunks_exact_mut(side_px).enumerate() {
            let Some(y) = module_at(py as u32, offset, scale, modules) else {
                continue;
            };
            for (px, pixel) in row.iter_mut().enumerate() {
                if let Some(x) = module_at(px as u32, offset, scale, modules) {
                    if self.is_dark(x, y) {
                        *pixel = 0;
                    }
                }
            }
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
        Ok(out)
    }
}

/// The module under pixel `pixel`, if it falls inside the code.
fn module_at(pixel: u32, offset: u32, scale: u32, modules: u32) -> Option<usize> {
    let module = pixel.checked_sub(offset)? / scale;
    (module < modules).then_some(module as usize)
}
