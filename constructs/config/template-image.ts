/**
 * The cloud image `make template` builds the template from: a preset pinned in `versions.env`, or the operator's
 * own URL and checksum (`template_image = "custom"`), checked here so that a bad value fails at synth, named.
 */
import { readVersions } from "./versions";

/** A cloud image the Proxmox node downloads, and how it is verified and stored. */
export interface TemplateImage {
  /** `debian-12`, `ubuntu-24.04` or `custom`. */
  readonly name: string;
  readonly url: string;
  /** The file name on the image storage (`<storage>:import/<fileName>`); PVE's `import` content needs .qcow2, .raw or .vmdk. */
  readonly fileName: string;
  /** `sha256`, `sha512`, …: the `checksum-algorithm` of PVE's download-url. */
  readonly checksumAlgorithm: string;
  /** Lower-case hex. */
  readonly checksum: string;
  /** The template's disk, GiB: at least the image's virtual size (Proxmox imports it at that size, then grows it). */
  readonly diskGiB: number;
}

/**
 * The presets: the `versions.env` keys holding each one's URL and checksum, and a disk at least the image's virtual
 * size (Debian's genericcloud images are 3 GiB since 2025, Ubuntu's cloudimg 3.5 GiB).
 */
export const TEMPLATE_IMAGE_PRESETS = {
  "debian-12": { versions: "TEMPLATE_IMAGE_DEBIAN_12", diskGiB: 3 },
  "ubuntu-24.04": { versions: "TEMPLATE_IMAGE_UBUNTU_24_04", diskGiB: 4 },
} as const;

/** The template's disk when the image is the operator's own and template_disk_gib is null. */
export const CUSTOM_IMAGE_DISK_GIB = 8;

export type TemplateImagePreset = keyof typeof TEMPLATE_IMAGE_PRESETS;

/** The checksum algorithms PVE's download-url accepts (its `checksum-algorithm` enum) and their lengths in hex. */
export const CHECKSUM_HEX_LENGTH: Readonly<Record<string, number>> = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 };

/** Extensions PVE stores as `import` content (pve-storage's import file name check), and `.img`, saved as `.qcow2`. */
const IMPORT_EXTENSIONS = /\.(qcow2|raw|vmdk)$/;

/**
 * The file name an image URL is stored under: the URL's last path segment; a `.img` (how Ubuntu names its qcow2
 * cloud images) becomes `.qcow2`, because PVE's `import` content refuses other extensions.
 * Returns undefined when the name has none of the extensions.
 */
export function importFileName(url: string): string | undefined {
  let name: string;
  try {
    name = decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
  } catch {
    return undefined;
  }
  if (name.endsWith(".img")) name = `${name.slice(0, -".img".length)}.qcow2`;
  return /^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name) && IMPORT_EXTENSIONS.test(name) ? name : undefined;
}

/** `sha512:<hex>` -> algorithm and hex, or a problem text. */
export function parseChecksum(text: string): { algorithm: string; hex: string } | string {
  const match = /^([a-z0-9]+):([0-9A-Fa-f]+)$/.exec(text);
  if (!match) return "must be <algorithm>:<hex>, e.g. \"sha512:\" followed by the 128 hex digits of the image's line in SHA512SUMS";
  const [, algorithm, hex] = match;
  const length = CHECKSUM_HEX_LENGTH[algorithm];
  if (length === undefined) return `the algorithm "${algorithm}" is not one Proxmox verifies (${Object.keys(CHECKSUM_HEX_LENGTH).join(", ")})`;
  if (hex.length !== length) return `a ${algorithm} checksum has ${length} hex digits, this one ${hex.length}`;
  return { algorithm, hex: hex.toLowerCase() };
}

/**
 * Resolves an image: a preset from `versions.env`, or the custom URL and checksum. Problems go to `problems`,
 * worded for the tfvars key that causes them.
 */
export function resolveTemplateImage(
  name: string,
  custom: { readonly url: string | null; readonly checksum: string | null; readonly diskGiB: number | null },
  problems: string[],
  versions: Record<string, string> = readVersions(),
): TemplateImage | undefined {
  let url: string;
  let checksum: string;
  let from: string;
  if (name === "custom") {
    if (custom.url === null) problems.push('template_image = "custom" needs template_image_url: the http(s) URL of the cloud image the Proxmox node downloads.');
    if (custom.checksum === null) {
      problems.push(
        'template_image = "custom" needs template_image_checksum: an image is only downloaded with the checksum its publisher gives ' +
          '(e.g. "sha512:<hex>" from SHA512SUMS beside it), so that a corrupt or altered file is refused.',
      );
    }
    if (custom.url === null || custom.checksum === null) return undefined;
    [url, checksum, from] = [custom.url, custom.checksum, "template_image_url"];
  } else {
    const preset = TEMPLATE_IMAGE_PRESETS[name as TemplateImagePreset];
    for (const key of ["url", "checksum"] as const) {
      if (custom[key] !== null) problems.push(`template_image_${key} is set, but template_image = ${JSON.stringify(name)}: it is only read with template_image = "custom"; remove one of them.`);
    }
    const urlKey = `${preset.versions}_URL`;
    const checksumKey = `${preset.versions}_CHECKSUM`;
    if (!versions[urlKey] || !versions[checksumKey]) {
      problems.push(`template_image = ${JSON.stringify(name)}: versions.env has no ${urlKey} / ${checksumKey}; restore them from git.`);
      return undefined;
    }
    [url, checksum, from] = [versions[urlKey], versions[checksumKey], `versions.env ${urlKey}`];
  }
  const fileName = importFileName(url);
  let ok = true;
  if (!/^https?:\/\/[^/]+\/./.test(url) || fileName === undefined) {
    problems.push(`${from} = ${JSON.stringify(url)}: must be an http(s) URL of an image file ending in .qcow2, .raw, .vmdk or .img (Proxmox imports only those).`);
    ok = false;
  }
  const parsed = parseChecksum(checksum);
  if (typeof parsed === "string") {
    problems.push(`${name === "custom" ? "template_image_checksum" : `versions.env ${TEMPLATE_IMAGE_PRESETS[name as TemplateImagePreset].versions}_CHECKSUM`} = ${JSON.stringify(checksum)}: ${parsed}.`);
    ok = false;
  }
  if (!ok || typeof parsed === "string") return undefined;
  const diskGiB = custom.diskGiB ?? (name === "custom" ? CUSTOM_IMAGE_DISK_GIB : TEMPLATE_IMAGE_PRESETS[name as TemplateImagePreset].diskGiB);
  return { name, url, fileName: fileName!, checksumAlgorithm: parsed.algorithm, checksum: parsed.hex, diskGiB };
}
