//! The system font that PNG charts (the load generator's, training's confusion matrices)
//! draw their text with: plotters' `ab_glyph` backend needs one registered by hand.

use plotters::style::{FontStyle, register_font};

/// Where Debian's fonts-dejavu-core (and Arch's ttf-dejavu) put DejaVu Sans.
const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers DejaVu Sans as plotters' "sans-serif", once per process.
pub fn ensure_font() -> crate::Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        FONT_PATHS
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .is_some_and(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
    });
    if ok {
        Ok(())
    } else {
        Err(crate::Error::Config(
            "no DejaVuSans.ttf found (apt install fonts-dejavu-core)".into(),
        ))
    }
}
