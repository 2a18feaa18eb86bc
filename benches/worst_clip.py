"""Writes the worst-aligned clip of the call-shape benches: the speech fixture trimmed to
3.637 s, a length that is a multiple of no chunk, hop or window.

    python3 benches/worst_clip.py OUT.wav
"""
import sys
import wave

src = wave.open("tests/fixtures/speech_long_16k.wav")
frames = src.readframes(int(3.637 * 16000))
dst = wave.open(sys.argv[1], "wb")
dst.setnchannels(1)
dst.setsampwidth(2)
dst.setframerate(16000)
dst.writeframes(frames)
