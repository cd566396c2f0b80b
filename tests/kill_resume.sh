#!/usr/bin/env bash
# kill -9 during training, then --resume: the run must finish with exactly the results of an
# uninterrupted one (same seed, same threads): the same per-epoch metrics and bit-identical best
# weights. Then that --seed sets the initial weights. Runs the main command on a small synthetic
# CIFAR-10 directory.
# Usage: kill_resume.sh path/to/train_cifar10
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Six files of 64 records (label byte 0..9, then 3072 pseudo-random pixel bytes); perl is in every Debian.
mkdir -p "$tmp/data"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  perl -e 'srand($ARGV[0]); for my $r (0..63) { print chr($r % 10), pack("C*", map { int(rand(256)) } 1..3072) }' \
    "${#f}$RANDOM" >"$tmp/data/$f.bin"
done
args=(--data "$tmp/data" --model twolayer --epochs 6 --max-steps 6 --batch-size 16 --num-val 64 --threads 2
      --seed 7 --optimizer adam --lr 0.001)

start=$(date +%s%N)
"$bin" "${args[@]}" --run-dir "$tmp/ref" >"$tmp/ref.log" 2>&1 || { cat "$tmp/ref.log"; exit 1; }
ms=$((($(date +%s%N) - start) / 1000000))

# Three kills, each once a checkpoint exists and then after a random part of a third of an
# uninterrupted run's time (so it lands in a step, an evaluation or a checkpoint write); the last
# attempt finishes.
kills=0 resumes=0
for attempt in 1 2 3 4 5 6 7 8; do
  extra=()
  if [ -f "$tmp/run/checkpoint.safetensors" ]; then
    extra=(--resume)
    resumes=$((resumes + 1))
  fi
  "$bin" "${args[@]}" "${extra[@]}" --run-dir "$tmp/run" >"$tmp/run.log" 2>&1 &
  pid=$!
  if ((kills < 3)); then
    while kill -0 "$pid" 2>/dev/null && [ ! -f "$tmp/run/checkpoint.safetensors" ]; do sleep 0.02; done
    sleep "$(awk -v ms="$ms" -v r="$RANDOM" 'BEGIN { printf "%.3f", ms * r / 32768 / 3000 }')"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
  fi
  wait "$pid" 2>/dev/null
  rc=$?
  [ "$rc" -eq 0 ] && break
  if [ "$rc" -ne 137 ]; then
    echo "FAIL: attempt $attempt exited $rc:"
    cat "$tmp/run.log"
    exit 1
  fi
done

failures=0
if [ "$rc" -ne 0 ] || ((kills == 0 || resumes == 0)); then
  echo "FAIL: the run did not finish after kills (exit $rc, $kills kills, $resumes resumes)"
  failures=1
fi
if ! diff <(cut -d, -f1-5 "$tmp/ref/metrics.csv") <(cut -d, -f1-5 "$tmp/run/metrics.csv"); then
  echo "FAIL: metrics after kill and resume differ from the uninterrupted run's"
  failures=1
fi
if ! cmp "$tmp/ref/best.safetensors" "$tmp/run/best.safetensors"; then
  echo "FAIL: best weights after kill and resume differ from the uninterrupted run's"
  failures=1
fi
# --seed sets the initial weights: with a learning rate far below f32 rounding the best weights are
# the initial ones, equal for equal seeds and different for different ones.
for seed in 7 7 8; do
  "$bin" --data "$tmp/data" --model twolayer --epochs 1 --max-steps 1 --batch-size 16 --num-val 64 --threads 2 \
    --optimizer sgd --lr 1e-30 --seed "$seed" --run-dir "$tmp/seed$seed" >"$tmp/seed.log" 2>&1 ||
    { cat "$tmp/seed.log"; exit 1; }
  mv "$tmp/seed$seed/best.safetensors" "$tmp/init_$seed.$RANDOM.safetensors"
done
inits=("$tmp"/init_7.* "$tmp"/init_8.*)
if ! cmp -s "${inits[0]}" "${inits[1]}" || cmp -s "${inits[0]}" "${inits[2]}"; then
  echo "FAIL: the initial weights do not follow --seed (same seed: equal, another seed: different)"
  failures=1
fi
[ "$failures" -eq 0 ] && echo "kill_resume: $kills kills, $resumes resumes: same metrics and bit-identical weights; --seed sets the initial weights"
exit "$failures"
