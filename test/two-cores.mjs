// Loaded with `node --import` into a child CLI by tests that need the threaded wasm build: the child then counts
// two cores whatever the machine has (1 in `taskset -c 0`, 16 on a GPU box).
import os from 'node:os';

os.availableParallelism = () => 2;
