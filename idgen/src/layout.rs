//! The bit layout of an ID: sign bit unused, then time, worker and sequence bits, highest first, so IDs sort by
//! time.

/// 2026-01-01T00:00:00Z in Unix milliseconds: the default epoch, so 41 bits of time last until 2095.
pub const DEFAULT_EPOCH_MS: u64 = 1_767_225_600_000;
/// The default widths of the time, worker and sequence fields (with the sign bit, 64).
pub const DEFAULT_BITS: (u8, u8, u8) = (41, 10, 12);

/// A layout that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The three fields need more than the 63 usable bits.
    #[error(
        "time ({time}) + worker ({worker}) + sequence ({sequence}) bits must add up to at most 63"
    )]
    TooWide {
        /// Time bits asked for.
        time: u8,
        /// Worker bits asked for.
        worker: u8,
        /// Sequence bits asked for.
        sequence: u8,
    },
    /// A field has no bits, or time too few to be useful.
    #[error("time needs at least 32 bits and worker and sequence at least 1 each")]
    TooNarrow,
}

/// The layout of IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    epoch_ms: u64,
    time_bits: u8,
    worker_bits: u8,
    sequence_bits: u8,
}

/// An ID taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// When it was issued, in Unix milliseconds.
    pub unix_ms: u64,
    /// The worker that issued it.
    pub worker: u64,
    /// Its sequence number within that millisecond.
    pub sequence: u64,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            epoch_ms: DEFAULT_EPOCH_MS,
            time_bits: DEFAULT_BITS.0,
            worker_bits: DEFAULT_BITS.1,
            sequence_bits: DEFAULT_BITS.2,
        }
    }
}

impl Layout {
    /// A layout with the given epoch (Unix ms) and field widths.
    ///
    /// # Errors
    /// [`LayoutError`] when the fields do not fit 63 bits or are too narrow.
    pub fn new(
        epoch_ms: u64,
        time_bits: u8,
        worker_bits: u8,
        sequence_bits: u8,
    ) -> Result<Self, LayoutError> {
        if u32::from(time_bits) + u32::from(worker_bits) + u32::from(sequence_bits) > 63 {
            return Err(LayoutError::TooWide {
                time: time_bits,
                worker: worker_bits,
                sequence: sequence_bits,
            });
        }
        if time_bits < 32 || worker_bits == 0 || sequence_bits == 0 {
            return Err(LayoutError::TooNarrow);
        }
        Ok(Self {
            epoch_ms,
            time_bits,
            worker_bits,
            sequence_bits,
        })
    }

    /// The epoch in Unix milliseconds.
    pub fn epoch_ms(&self) -> u64 {
        self.epoch_ms
    }

    /// Number of worker IDs (2^worker_bits).
    pub fn worker_count(&self) -> u64 {
        1 << self.worker_bits
    }

    /// Highest sequence number within one millisecond.
    pub fn max_sequence(&self) -> u64 {
        (1 << self.sequence_bits) - 1
    }

    /// Highest time offset (ms since the epoch) an ID can carry.
    pub fn max_elapsed_ms(&self) -> u64 {
        (1 << self.time_bits) - 1
    }

    /// How far the time field is shifted left.
    pub(crate) fn time_shift(&self) -> u8 {
        self.worker_bits + self.sequence_bits
    }

    /// How far the worker field is shifted left: past the sequence field, which sits below it.
    pub(crate) fn worker_shift(&self) -> u8 {
        self.sequence_bits
    }

    /// The worker field's bits, in place.
    pub(crate) fn worker_mask(&self) -> u64 {
        (self.worker_count() - 1) << self.sequence_bits
    }

    /// Builds an ID; the caller keeps each part in range.
    pub fn compose(&self, elapsed_ms: u64, worker: u64, sequence: u64) -> u64 {
        (elapsed_ms << (self.worker_bits + self.sequence_bits))
            | (worker << self.sequence_bits)
            | sequence
    }

    /// Takes an ID apart. `None` when the ID has bits outside the layout (not one of ours).
    pub fn decode(&self, id: u64) -> Option<Decoded> {
        let width = self.time_bits + self.worker_bits + self.sequence_bits;
        if width < 64 && id >> width != 0 {
            return None;
        }
        let sequence = id & self.max_sequence();
        let worker = (id >> self.sequence_bits) & (self.worker_count() - 1);
        let elapsed = id >> (self.worker_bits + self.sequence_bits);
        Some(Decoded {
            unix_ms: self.epoch_ms + elapsed,
            worker,
            sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_layout_is_41_10_12() {
        let layout = Layout::default();
        assert_eq!(layout.worker_count(), 1024);
        assert_eq!(layout.max_sequence(), 4095);
        assert_eq!(layout.max_elapsed_ms(), (1 << 41) - 1);
    }

    #[test]
    fn an_id_decodes_to_its_parts() {
        let layout = Layout::default();
        let id = layout.compose(123_456, 789, 4_000);
        assert_eq!(
            layout.decode(id),
            Some(Decoded {
                unix_ms: DEFAULT_EPOCH_MS + 123_456,
                worker: 789,
                sequence: 4_000
            })
        );
        assert!(
            i64::try_from(layout.compose(layout.max_elapsed_ms(), 1023, 4095)).is_ok(),
            "the sign bit stays 0"
        );
    }

    #[test]
    fn layouts_that_do_not_fit_are_refused() {
        assert!(matches!(
            Layout::new(0, 42, 10, 12),
            Err(LayoutError::TooWide { .. })
        ));
        assert_eq!(Layout::new(0, 31, 10, 12), Err(LayoutError::TooNarrow));
        assert_eq!(Layout::new(0, 41, 0, 12), Err(LayoutError::TooNarrow));
        assert!(Layout::new(0, 39, 8, 16).is_ok());
    }

    #[test]
    fn ids_outside_the_layout_do_not_decode() {
        let layout = Layout::new(0, 40, 10, 12).expect("fits");
        assert_eq!(layout.decode(1 << 62), None);
    }
}

/// Compose/decode round trips over every layout that fits and every in-range part, not only the default.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Any layout `Layout::new` accepts, with an epoch between 1970 and about 2100.
    fn layouts() -> impl Strategy<Value = Layout> {
        (32u8..=61)
            .prop_flat_map(|time| (Just(time), 1u8..=(62 - time)))
            .prop_flat_map(|(time, worker)| (Just(time), Just(worker), 1u8..=(63 - time - worker)))
            .prop_flat_map(|(time, worker, sequence)| {
                (0u64..4_102_444_800_000).prop_map(move |epoch| {
                    Layout::new(epoch, time, worker, sequence).expect("fits by construction")
                })
            })
    }

    /// Bits an ID of `layout` uses (at most 63).
    fn width(layout: &Layout) -> u8 {
        layout.time_bits + layout.worker_bits + layout.sequence_bits
    }

    /// A layout with in-range parts of an ID.
    fn layout_and_parts() -> impl Strategy<Value = (Layout, u64, u64, u64)> {
        layouts().prop_flat_map(|layout| {
            (
                Just(layout),
                0..=layout.max_elapsed_ms(),
                0..layout.worker_count(),
                0..=layout.max_sequence(),
            )
        })
    }

    proptest! {
        #[test]
        fn an_id_decodes_to_the_parts_it_was_composed_of((layout, elapsed, worker, sequence) in layout_and_parts()) {
            let id = layout.compose(elapsed, worker, sequence);
            prop_assert_eq!(
                layout.decode(id),
                Some(Decoded { unix_ms: layout.epoch_ms() + elapsed, worker, sequence })
            );
            prop_assert!(i64::try_from(id).is_ok(), "the sign bit stays 0: {id}");
        }

        #[test]
        fn every_id_inside_the_layout_composes_back_from_its_parts(
            (layout, id) in layouts().prop_flat_map(|layout| (Just(layout), 0..(1u64 << width(&layout))))
        ) {
            let decoded = layout.decode(id).expect("inside the layout");
            let elapsed = decoded.unix_ms - layout.epoch_ms();
            prop_assert_eq!(layout.compose(elapsed, decoded.worker, decoded.sequence), id);
        }

        // IDs sort by time, then worker, then sequence: what makes codes and cursors time-ordered.
        #[test]
        fn ids_sort_like_their_parts(
            (layout, a, b) in layout_and_parts().prop_flat_map(|(layout, e, w, s)| {
                (Just(layout), Just((e, w, s)), (0..=layout.max_elapsed_ms(), 0..layout.worker_count(), 0..=layout.max_sequence()))
            })
        ) {
            let id_a = layout.compose(a.0, a.1, a.2);
            let id_b = layout.compose(b.0, b.1, b.2);
            prop_assert_eq!(id_a.cmp(&id_b), a.cmp(&b));
        }

        #[test]
        fn ids_with_bits_above_the_layout_do_not_decode(
            (layout, id) in layouts().prop_flat_map(|layout| (Just(layout), (1u64 << width(&layout))..))
        ) {
            prop_assert_eq!(layout.decode(id), None);
        }
    }
}
