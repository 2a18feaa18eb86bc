use super::*;

#[test]
fn channels_are_kept_interleaved_or_averaged() {
    let bytes = encode(&[0.5, -0.25, 0.25, 0.75], SampleFormat::S16Le);
    let (mut mixed, mut kept) = (Vec::new(), Vec::new());
    PcmDecoder::new(SampleFormat::S16Le, 2)
        .unwrap()
        .decode(&bytes, &mut mixed)
        .unwrap();
    let mut separate = PcmDecoder::keeping_channels(SampleFormat::S16Le, 2).unwrap();
    // A frame split across chunks still decodes whole.
    separate.decode(&bytes[..3], &mut kept).unwrap();
    separate.decode(&bytes[3..], &mut kept).unwrap();
    assert_eq!(mixed, [0.125, 0.5]);
    assert_eq!(kept, [0.5, -0.25, 0.25, 0.75]);
}

#[test]
fn g711_round_trips_every_code() {
    for byte in 0..=255u8 {
        let linear = mulaw_to_linear(byte);
        // 0x7F and 0xFF both decode to 0 (the two signed zeros of mu-law).
        if linear != 0 {
            assert_eq!(linear_to_mulaw(linear), byte, "mu-law {byte:#x}");
        }
        assert_eq!(
            linear_to_alaw(alaw_to_linear(byte)),
            byte,
            "A-law {byte:#x}"
        );
    }
}

/// A phone line's codec keeps speech-level audio within G.711's ~38 dB SNR.
#[test]
fn g711_round_trip_keeps_length_and_quantizes_within_its_snr() {
    let tone: Vec<f32> = (0..8000)
        .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin())
        .collect();
    let power = |y: &[f32]| y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
    for format in [SampleFormat::MuLaw, SampleFormat::ALaw] {
        let out = round_trip(&tone, format);
        assert_eq!(out.len(), tone.len());
        let noise: Vec<f32> = tone.iter().zip(&out).map(|(a, b)| a - b).collect();
        let snr = 10.0 * (power(&tone) / power(&noise)).log10();
        assert!((30.0..50.0).contains(&snr), "{format:?}: SNR {snr:.1} dB");
    }
    assert_eq!(round_trip(&tone, SampleFormat::F32Le), tone);
}

#[test]
fn g711_known_values() {
    assert_eq!(mulaw_to_linear(0xFF), 0);
    assert_eq!(mulaw_to_linear(0x80), 32_124);
    assert_eq!(mulaw_to_linear(0x00), -32_124);
    assert_eq!(alaw_to_linear(0xD5), 8);
    assert_eq!(alaw_to_linear(0xAA), 32_256);
    assert_eq!(alaw_to_linear(0x2A), -32_256);
}

#[test]
fn odd_bytes_are_carried_across_chunks() {
    let samples = [0.5f32, -0.25, 0.125, -1.0];
    let bytes = encode(&samples, SampleFormat::S16Le);
    let mut decoder = PcmDecoder::new(SampleFormat::S16Le, 1).unwrap();
    let mut out = Vec::new();
    for chunk in [&bytes[..1], &bytes[1..4], &bytes[4..5], &bytes[5..]] {
        decoder.decode(chunk, &mut out).unwrap();
    }
    assert_eq!(out, samples);
    assert_eq!(decoder.pending_bytes(), 0);
}

#[test]
fn stereo_is_averaged_to_mono() {
    let mut decoder = PcmDecoder::new(SampleFormat::F32Le, 2).unwrap();
    let bytes = encode(&[0.5, 0.25, -1.0, 1.0], SampleFormat::F32Le);
    let mut out = Vec::new();
    decoder.decode(&bytes, &mut out).unwrap();
    assert_eq!(out, [0.375, 0.0]);
}

#[test]
fn non_finite_floats_are_rejected_without_partial_output() {
    let mut decoder = PcmDecoder::new(SampleFormat::F32Le, 1).unwrap();
    let bytes = encode(&[0.1, f32::NAN, 0.2], SampleFormat::F32Le);
    let mut out = Vec::new();
    let err = decoder.decode(&bytes, &mut out).unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
    assert!(out.is_empty());
    let bytes = encode(&[f32::INFINITY], SampleFormat::F32Le);
    assert!(decoder.decode(&bytes, &mut out).is_err());
}

#[test]
fn floats_beyond_int16_scale_are_rejected() {
    // Floats holding int16 values are accepted (the model ignores level); 1e19 squared
    // over a frame would overflow the power spectrum (found by fuzz/pcm_decode).
    let mut decoder = PcmDecoder::new(SampleFormat::F32Le, 2).unwrap();
    let bytes = encode(&[32_768.0, 32_766.0, -1.5, -0.5], SampleFormat::F32Le);
    let mut out = Vec::new();
    decoder.decode(&bytes, &mut out).unwrap();
    assert_eq!(out, [32_767.0, -1.0]);
    for loud in [32_769.0, 1.0e19, -f32::MAX] {
        let bytes = encode(&[0.0, loud], SampleFormat::F32Le);
        let err = decoder.decode(&bytes, &mut out).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}

#[test]
fn channel_counts_are_validated() {
    assert!(PcmDecoder::new(SampleFormat::S16Le, 0).is_err());
    assert!(PcmDecoder::new(SampleFormat::S16Le, 1000).is_err());
}

/// The per-format fast paths and the frame carried between chunks give the same samples as
/// one whole chunk, for every split, format and channel layout; a bad sample anywhere leaves
/// the decoder as it was.
#[test]
fn any_split_decodes_like_the_whole_chunk() {
    let samples: Vec<f32> = (0..24).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
    let formats = [
        SampleFormat::S16Le,
        SampleFormat::F32Le,
        SampleFormat::MuLaw,
        SampleFormat::ALaw,
    ];
    for format in formats {
        let bytes = encode(&samples, format);
        for (channels, keep) in [(1, false), (2, false), (3, true), (3, false)] {
            let make = || {
                if keep {
                    PcmDecoder::keeping_channels(format, channels).unwrap()
                } else {
                    PcmDecoder::new(format, channels).unwrap()
                }
            };
            let mut whole = Vec::new();
            make().decode(&bytes, &mut whole).unwrap();
            for split in 0..=bytes.len() {
                for second in split..=bytes.len() {
                    let mut decoder = make();
                    let mut out = Vec::new();
                    for part in [&bytes[..split], &bytes[split..second], &bytes[second..]] {
                        decoder.decode(part, &mut out).unwrap();
                    }
                    assert_eq!(out, whole, "{format:?} x{channels} at {split}/{second}");
                    assert_eq!(decoder.pending_bytes(), 0);
                }
            }
        }
    }
    // A NaN in the chunk that completes a carried frame: nothing appended, carry kept.
    let mut decoder = PcmDecoder::new(SampleFormat::F32Le, 1).unwrap();
    let good = encode(&[0.25], SampleFormat::F32Le);
    let bad = encode(&[0.5, f32::NAN], SampleFormat::F32Le);
    let mut out = Vec::new();
    decoder.decode(&good[..3], &mut out).unwrap();
    let err = decoder
        .decode(&[&good[3..], &bad[..]].concat(), &mut out)
        .unwrap_err();
    assert!(
        err.to_string().contains("at frame 2 is not finite"),
        "{err}"
    );
    assert!(out.is_empty());
    assert_eq!(decoder.pending_bytes(), 3);
    decoder.decode(&good[3..], &mut out).unwrap();
    assert_eq!(out, [0.25]);
}
