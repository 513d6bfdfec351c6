// nnU-Net v2's raw layout (nnU-Net documentation, "dataset format"): dataset.json with channel_names
// ({"0": "T2", "1": "ADC"}), labels (name → value, or name → [values] for region-based training), numTraining
// and file_ending; imagesTr/<case>_<XXXX><file_ending> per channel, labelsTr/<case><file_ending>, and imagesTs/
// without labels. A case is named by its label file; images without one, missing or extra channel files
// and a count that disagrees with numTraining are reported, each naming the file.
import { folderFiles, readDatasetJson, type LayoutCases, type VolumeCase } from '../volumes/cases.js';

function channelFiles(files: string[], dir: string, ending: string): Map<string, Map<number, string>> {
  const byCase = new Map<string, Map<number, string>>();
  const pattern = new RegExp(`^${dir}/(.+)_(\\d{4})${ending.replace(/\./g, '\\.')}$`);
  for (const file of files) {
    const m = pattern.exec(file);
    if (m === null) continue;
    let channels = byCase.get(m[1]!);
    if (channels === undefined) byCase.set(m[1]!, (channels = new Map()));
    channels.set(Number(m[2]), file);
  }
  return byCase;
}

export function readNnunetLayout(root: string): LayoutCases {
  const { file, json } = readDatasetJson(root);
  const bad = (what: string): never => {
    throw new Error(`${file}: ${what} (nnU-Net v2 dataset.json: channel_names, labels, numTraining, file_ending)`);
  };
  const channelNamesJson = json.channel_names ?? json.modality;
  if (channelNamesJson === null || typeof channelNamesJson !== 'object') bad('has no channel_names object');
  const channelNames = Object.entries(channelNamesJson as Record<string, unknown>).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, name]) => String(name));
  const ending = typeof json.file_ending === 'string' ? json.file_ending : bad('has no file_ending (e.g. ".nii.gz")');
  if (!/^\.nii(\.gz)?$/.test(ending)) bad(`file_ending ${JSON.stringify(ending)}: flow reads NIfTI (.nii.gz, .nii)`);
  const labelsJson = json.labels;
  if (labelsJson === null || typeof labelsJson !== 'object') bad('has no labels object (name → value)');
  const labels: Record<string, string> = {};
  const regions: Record<string, number[]> = {};
  const ignore: number[] = [];
  for (const [name, value] of Object.entries(labelsJson as Record<string, unknown>)) {
    // nnU-Net v2's "ignore" label marks voxels that are not annotated: neither foreground nor background.
    if (name === 'ignore' && typeof value === 'number') ignore.push(value);
    else if (typeof value === 'number' && Number.isInteger(value)) labels[String(value)] = name;
    else if (Array.isArray(value) && value.every((v) => Number.isInteger(v))) regions[name] = value as number[];
    else bad(`labels.${name} must be an integer value or a list of them, got ${JSON.stringify(value)}`);
  }
  // Region-based datasets list regions only; their classes are the values the regions use.
  for (const values of Object.values(regions)) for (const v of values) labels[String(v)] ??= `label_${v}`;
  labels['0'] ??= 'background';

  const skipped: LayoutCases['skipped'] = [];
  const disagreements: string[] = [];
  const cases: VolumeCase[] = [];
  const labelFiles = folderFiles(root, 'labelsTr');
  const labelled = new Map<string, string>();
  for (const f of labelFiles) {
    const name = f.slice('labelsTr/'.length);
    if (name.endsWith(ending) && !name.startsWith('.')) labelled.set(name.slice(0, -ending.length), f);
    else skipped.push({ path: f, reason: `not a label file (<case>${ending}) of this dataset.json` });
  }
  let trainIds = 0;
  for (const [dir, subset] of [['imagesTr', 'train'], ['imagesTs', 'test']] as const) {
    const files = folderFiles(root, dir);
    const byCase = channelFiles(files, dir, ending);
    if (subset === 'train') trainIds = [...byCase.keys()].filter((id) => !id.startsWith('.')).length;
    const used = new Set<string>();
    for (const [id, channels] of [...byCase].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      for (const f of channels.values()) used.add(f);
      if (id.startsWith('.')) {
        for (const f of channels.values()) skipped.push({ path: f, reason: 'a hidden file (macOS resource fork?), not a case' });
        continue;
      }
      const label = subset === 'train' ? labelled.get(id) ?? null : null;
      if (subset === 'train' && label === null) {
        skipped.push({ path: [...channels.values()][0]!, reason: `case ${id}: no label: expected labelsTr/${id}${ending}` });
        continue;
      }
      const missing = channelNames.map((_, k) => k).filter((k) => !channels.has(k));
      if (missing.length > 0) {
        skipped.push({ path: `${dir}/${id}_${String(missing[0]).padStart(4, '0')}${ending}`, reason: `case ${id}: channel file(s) missing for ${missing.map((k) => `${String(k).padStart(4, '0')} (${channelNames[k]})`).join(', ')}; dataset.json channel_names declares ${channelNames.length}` });
        continue;
      }
      const extra = [...channels.keys()].filter((k) => k >= channelNames.length);
      if (extra.length > 0) {
        skipped.push({ path: channels.get(extra[0]!)!, reason: `case ${id}: has ${channels.size} channel files but dataset.json channel_names declares ${channelNames.length} (cases must have the same channels)` });
        continue;
      }
      cases.push({ id, subset, images: Object.fromEntries(channelNames.map((name, k) => [name, channels.get(k)!])), label });
      if (label !== null) labelled.delete(id);
    }
    for (const f of files) if (!used.has(f)) skipped.push({ path: f, reason: `not described by the layout (<case>_<XXXX>${ending})` });
  }
  for (const [id, f] of labelled) skipped.push({ path: f, reason: `case ${id}: a label without images (expected imagesTr/${id}_0000${ending})` });
  if (typeof json.numTraining === 'number' && json.numTraining !== trainIds) {
    disagreements.push(`${file}: numTraining is ${json.numTraining} but imagesTr/ holds ${trainIds} case(s)`);
  }
  return { kind: 'nnunet', cases, skipped, disagreements, labels, ignore, regions: Object.keys(regions).length > 0 ? regions : null, channelNames };
}
