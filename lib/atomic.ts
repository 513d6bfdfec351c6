// Atomic writes for stages and lib/: the engine's one helper (temp file + fsync + rename + folder fsync),
// re-exported here so domain code keeps importing from lib/.
export { copyFileAtomic, writeFileAtomic, writeJsonAtomic, fsyncDir } from '../engine/atomic-write.js';
