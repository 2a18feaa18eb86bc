#!/bin/bash
# E29b: the shipped recipe (wideband, then a phone-line fine-tune) under leave-one-corpus-out.
set -e
cd "$(dirname "$0")/.."
T=target/release/sentio-train
WIDE='{"augmentations":["original","noise","stretch_pitch","telephony"],"original_prob":0.4,"label_smoothing":0.0,"mel_shift_prob":0.0,"mel_shift_bands":0,"epochs":15}'
for p in ${PARTS:-4 1 3}; do
  echo "== partition $p wide $(date)"
  $T --data ../shared/data/ser --models logmel --protocol loco --only $p --recipe "$WIDE" --out runs/loco-wide
  NB="{\"augmentations\":[\"original\",\"noise\",\"stretch_pitch\"],\"original_prob\":0.4,\"label_smoothing\":0.0,\"mel_shift_prob\":0.0,\"mel_shift_bands\":0,\"epochs\":15,\"learning_rate\":0.001,\"narrowband\":true,\"init_from\":\"runs/loco-wide/logmel-loco-$p\"}"
  echo "== partition $p narrowband fine-tune $(date)"
  $T --data ../shared/data/ser --models logmel --protocol loco --only $p --recipe "$NB" --out runs/loco-nbft
  $T --data ../shared/data/ser --evaluate runs/loco-wide/logmel-loco-$p > runs/loco-wide/eval-$p.txt 2>&1
  $T --data ../shared/data/ser --evaluate runs/loco-nbft/logmel-loco-$p > runs/loco-nbft/eval-$p.txt 2>&1
  echo "== partition $p done $(date)"
done
