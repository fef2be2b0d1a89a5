#!/bin/bash
# The four paper-reading ablation runs of demo-super (docs/faithfulness.md), one after the other; each resumes if
# its run folder holds a state (re-run this script to continue after an interruption).
cd "$(dirname "$0")/../.."
for r in qk key-init lab-loss no-remap; do
  out=runs/demo-super-paper-$r
  if [ -f checkpoints/demo-super-paper-$r.safetensors ]; then echo "done: $r"; continue; fi
  resume=""; [ -f $out/last.state.pt ] && resume=--resume
  echo "$(date -u +%H:%M:%S) start $r $resume"
  .venv/bin/python -m sa_lib.cli.train --profile demo --variant super --paper-reading $r $resume --no-progress \
    --export checkpoints/demo-super-paper-$r.safetensors || exit 1
  echo "$(date -u +%H:%M:%S) end $r"
done
