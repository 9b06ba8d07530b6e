/**
 * Role `k3s_binary`: the pinned K3s binary, checksum-verified, shared by `k3s_master` and `k3s_worker`
 * (their meta dependency), plus optional air-gap images.
 *
 * Two phases, so that a rolling upgrade (upgrade.yml) can get and verify the new binary on every node before
 * it drains any:
 * - stage (tasks/stage.yml, also run alone with `tasks_from: stage`): the verified binary lands at
 *   /var/lib/k3s-proxmox/k3s-<version> and the images in /var/lib/rancher/k3s/agent/images/. It notifies
 *   nothing, so it never restarts K3s, and a failed download or verification leaves the installed binary as it was;
 * - install (tasks/main.yml, which runs stage.yml first unless it ran already in this run): the staged binary
 *   copied to k3s_binary_install_path, the tool links, and the staged binaries of other versions removed.
 *
 * Two sources, one result (a binary checked against a sha256):
 * - download (default): the K3s GitHub release for k3s_binary_version, verified by get_url against the
 *   release's published sha256sum-<arch>.txt (or a pinned `sha256:<hex>` in k3s_binary_checksum);
 * - air gap: k3s_binary_airgap_path names a binary on the operator's machine. Its sha256 is
 *   k3s_binary_airgap_checksum, else read from `<path>.sha256` or `<folder>/sha256sum` beside it (the
 *   `sha256sum` format, a line "<hex>  <name>" for the binary's file name, or a bare hex). The binary is
 *   checked on the operator's machine before it is copied, and again on the node after.
 * Either way `k3s --version` of the staged binary must report k3s_binary_version.
 *
 * Images: the release's k3s-airgap-images-<arch>.<format> (k3s_binary_release_images, verified against the
 * release's sha256sum-<arch>.txt), and/or the tarballs of k3s_binary_airgap_images_dir, checked against the
 * `sha256sum` file in that folder or its parent where it lists them.
 *
 * A changed binary or image notifies the topic `k3s binary changed` (from main.yml); the k3s_master and
 * k3s_worker handlers listen to it and restart their own service only.
 */
import { folded, Role } from "../model";

/** A `sha256sum` line: hex, spaces, optional `*` (binary mode), optional folder, then the file's name. */
const SUM_LINE = "'^([0-9a-fA-F]{64})[ ]+[*]?(?:.*/)?([^/]+)$'";

/** `sha256sum` file content (Jinja expression) -> {file name: hex}. */
const sums = (fileExpr: string) =>
  `dict(lookup('ansible.builtin.file', ${fileExpr}).splitlines() | map('regex_search', ${SUM_LINE}, '\\2', '\\1') | select | list)`;

/** Where the binary goes unless k3s_binary_install_path says otherwise; playbooks outside the roles fall back to it. */
export const K3S_INSTALL_PATH = "/usr/local/bin/k3s";
/** The K3s binary in a playbook that does not run the k3s_binary role. */
export const K3S = `{{ k3s_binary_install_path | default('${K3S_INSTALL_PATH}') }}`;

export const K3S_BINARY_CHANGED = "k3s binary changed";

/** Where verified binaries wait, one per version, before one is installed (make reset removes it). */
export const K3S_STAGE_DIR = "/var/lib/k3s-proxmox";

const AIRGAP = "k3s_binary_airgap_path | length > 0";
/** The fact stage.yml sets when done: the version it staged (in this run). */
const STAGED = "k3s_binary_staged_version";
const DOWNLOAD = "k3s_binary_airgap_path | length == 0";

export const k3sBinary: Role = {
  name: "k3s_binary",
  source: "constructs/ansible/roles/k3s_binary.ts",
  summary: "The pinned, checksum-verified K3s binary (downloaded or air-gapped) and air-gap images.",
  description: [
    "Installs the K3s binary of k3s_binary_version at k3s_binary_install_path. By default it is downloaded from the K3s release " +
      "and verified against the release's published sha256 file. With k3s_binary_airgap_path set, the binary is copied from the " +
      "operator's machine instead, after its sha256 is checked against k3s_binary_airgap_checksum, or the sha256sum-format file " +
      "<path>.sha256 or <folder>/sha256sum beside it. Optionally copies air-gap image tarballs into /var/lib/rancher/k3s/agent/images/ " +
      "(K3s imports them at start), checked against the sha256sum file of their folder (or its parent) where it lists them.",
    "Two phases: tasks/stage.yml (run alone with tasks_from: stage) downloads or copies the verified binary to " +
      "/var/lib/k3s-proxmox/k3s-<version> and the images into place, and notifies nothing; tasks/main.yml stages, then installs " +
      "the staged binary at k3s_binary_install_path. A failed download or verification leaves the installed binary untouched.",
    "With k3s_binary_release_images, the release's k3s-airgap-images-<arch>.<format> is downloaded as well, verified against the " +
      "release's sha256sum-<arch>.txt, for nodes that cannot reach the container registries.",
    "A changed binary or image notifies the topic 'k3s binary changed', which the k3s_master and k3s_worker handlers listen to.",
  ],
  variables: [
    {
      name: "k3s_binary_version",
      type: "str",
      required: true,
      description: "K3s release to install, e.g. v1.33.5+k3s1 (k3s_version in terraform.tfvars, else K3S_VERSION in versions.env).",
    },
    {
      name: "k3s_binary_install_path",
      type: "path",
      default: K3S_INSTALL_PATH,
      description: "Where the binary is installed on the node.",
    },
    {
      name: "k3s_binary_release_url",
      type: "str",
      default: "https://github.com/k3s-io/k3s/releases/download",
      description: "Base URL of the K3s releases; the binary and sha256sum-<arch>.txt are under <this>/<version>/. Point it at a mirror of the release assets if you have one.",
    },
    {
      name: "k3s_binary_url",
      type: "str",
      default: "",
      description: "Full download URL of the binary; empty means <k3s_binary_release_url>/<version>/k3s<arch suffix>.",
    },
    {
      name: "k3s_binary_checksum",
      type: "str",
      default: "",
      description:
        "Checksum for the download, in get_url's form: 'sha256:<hex>' (pinned) or 'sha256:<URL of a sha256sum file>'; " +
        "empty means the release's sha256sum-<arch>.txt.",
    },
    {
      name: "k3s_binary_airgap_path",
      type: "str",
      default: "",
      description:
        "Absolute path on the operator's machine of a K3s binary to copy instead of downloading (air gap, offline mirror); " +
        "empty downloads. Its sha256 must be in k3s_binary_airgap_checksum, <path>.sha256 or <folder>/sha256sum.",
    },
    {
      name: "k3s_binary_airgap_checksum",
      type: "str",
      default: "",
      description:
        "sha256 (hex) of the air-gap binary; empty reads it from <k3s_binary_airgap_path>.sha256 or <folder>/sha256sum " +
        "(sha256sum output, the line for the binary's file name, or a bare hex).",
    },
    {
      name: "k3s_binary_airgap_images_dir",
      type: "str",
      default: "",
      description:
        "Absolute path of a folder on the operator's machine whose image tarballs (*.tar, *.tar.gz, *.tar.zst) are copied to " +
        "/var/lib/rancher/k3s/agent/images/ on every node, after a check against the sha256sum file in the folder or its parent " +
        "where it lists them; empty copies none.",
    },
    {
      name: "k3s_binary_release_images",
      type: "bool",
      default: false,
      description:
        "Also download the release's k3s-airgap-images-<arch>.<format> from <k3s_binary_release_url>/<version>/ into " +
        "/var/lib/rancher/k3s/agent/images/, verified against the release's sha256sum-<arch>.txt: for nodes that cannot reach " +
        "container registries (they still need the release URL).",
    },
    {
      name: "k3s_binary_release_images_format",
      type: "str",
      choices: ["tar", "tar.gz", "tar.zst"],
      default: "tar.zst",
      description: "Which of the release's image tarballs k3s_binary_release_images downloads (the same images, compressed differently).",
    },
    {
      name: "k3s_binary_links",
      type: "list",
      elements: "str",
      default: ["kubectl", "crictl", "ctr"],
      description: "Commands linked to the K3s binary in its folder (K3s runs as the tool it is called as).",
    },
  ],
  derived: [
    {
      name: "k3s_binary_architectures",
      comment: "K3s release naming per CPU (ansible_facts.architecture): the checksum file's arch and the binary's suffix.",
      value: {
        x86_64: { arch: "amd64", suffix: "" },
        aarch64: { arch: "arm64", suffix: "-arm64" },
        armv7l: { arch: "arm", suffix: "-armhf" },
      },
    },
    {
      name: "k3s_binary_release",
      comment: "This node's release assets.",
      value: "{{ k3s_binary_architectures[ansible_facts.architecture] | default({}) }}",
    },
    {
      name: "k3s_binary_download_url",
      comment: "The URL the binary is downloaded from.",
      value: folded(`
        {{ k3s_binary_url if k3s_binary_url | length > 0 else
           k3s_binary_release_url ~ '/' ~ (k3s_binary_version | urlencode) ~ '/k3s' ~ k3s_binary_release.suffix }}`),
    },
    {
      name: "k3s_binary_download_checksum",
      comment: "The checksum get_url verifies the download against.",
      value: folded(`
        {{ k3s_binary_checksum if k3s_binary_checksum | length > 0 else
           'sha256:' ~ k3s_binary_release_url ~ '/' ~ (k3s_binary_version | urlencode) ~ '/sha256sum-' ~ k3s_binary_release.arch ~ '.txt' }}`),
    },
    {
      name: "k3s_binary_stage_dir",
      comment: "Where verified binaries are staged on the node, one file per version, before one is installed.",
      value: K3S_STAGE_DIR,
    },
    {
      name: "k3s_binary_staged_path",
      comment: "The staged binary of k3s_binary_version.",
      value: "{{ k3s_binary_stage_dir }}/k3s-{{ k3s_binary_version }}",
    },
    {
      name: "k3s_binary_release_images_url",
      comment: "The release's image tarball for this node's CPU, in the chosen format.",
      value: folded(`
        {{ k3s_binary_release_url ~ '/' ~ (k3s_binary_version | urlencode) ~ '/k3s-airgap-images-' ~ k3s_binary_release.arch
           ~ '.' ~ k3s_binary_release_images_format }}`),
    },
    {
      name: "k3s_binary_release_images_checksum",
      comment: "The release's checksum file, which lists the image tarballs too (get_url picks the line for the file's name).",
      value: "sha256:{{ k3s_binary_release_url }}/{{ k3s_binary_version | urlencode }}/sha256sum-{{ k3s_binary_release.arch }}.txt",
    },
    {
      name: "k3s_binary_airgap_sum_file",
      comment: "The checksum file beside the air-gap binary: <path>.sha256, else <folder>/sha256sum ('' if neither exists).",
      value: folded(`
        {{ query('ansible.builtin.first_found', [k3s_binary_airgap_path ~ '.sha256', (k3s_binary_airgap_path | dirname) ~ '/sha256sum'],
                 skip=true) | first | default('') }}`),
    },
    {
      name: "k3s_binary_airgap_sha256",
      comment:
        "The air-gap binary's expected sha256: k3s_binary_airgap_checksum, else the checksum file's line for the binary's name, " +
        "else the file's content if it is a bare hex ('' if none).",
      value: folded(`
        {{ (k3s_binary_airgap_checksum | regex_replace('^sha256:', '') if k3s_binary_airgap_checksum | length > 0
            else '' if k3s_binary_airgap_sum_file | length == 0
            else ${sums("k3s_binary_airgap_sum_file")}[k3s_binary_airgap_path | basename]
                 | default(lookup('ansible.builtin.file', k3s_binary_airgap_sum_file) | trim)) | lower }}`),
    },
    {
      name: "k3s_binary_airgap_images",
      comment: "The image tarballs in k3s_binary_airgap_images_dir, sorted.",
      value: folded(`
        {{ [] if k3s_binary_airgap_images_dir | length == 0 else
           (query('ansible.builtin.fileglob', k3s_binary_airgap_images_dir ~ '/*.tar')
            + query('ansible.builtin.fileglob', k3s_binary_airgap_images_dir ~ '/*.tar.gz')
            + query('ansible.builtin.fileglob', k3s_binary_airgap_images_dir ~ '/*.tar.zst')) | sort }}`),
    },
    {
      name: "k3s_binary_airgap_image_sums",
      comment: "{image file name: sha256} from the sha256sum file in the images folder or its parent ({} if neither exists).",
      value: folded(`
        {{ {} if k3s_binary_airgap_images_dir | length == 0 else
           ${sums(`(query('ansible.builtin.first_found', [k3s_binary_airgap_images_dir ~ '/sha256sum',
                (k3s_binary_airgap_images_dir | dirname) ~ '/sha256sum'], skip=true) + ['/dev/null']) | first`)} }}`),
    },
    {
      name: "k3s_binary_images_path",
      comment: "Where K3s imports air-gap images from at start.",
      value: "/var/lib/rancher/k3s/agent/images",
    },
  ],
  taskFiles: {
    stage: {
      summary: "Stage the K3s binary: download or copy it, verified, to a versioned path; installs nothing, restarts nothing.",
      tasks: [
        {
          name: "Check that K3s publishes a binary for this CPU",
          module: "ansible.builtin.assert",
          args: {
            that: ["ansible_facts.architecture in k3s_binary_architectures"],
            fail_msg: folded(`
              K3s publishes no binary for {{ ansible_facts.architecture }} ({{ inventory_hostname }});
              supported: {{ k3s_binary_architectures | list | join(', ') }}.
              Set k3s_binary_url and k3s_binary_checksum, or k3s_binary_airgap_path, to a binary built for it
              (and k3s_binary_release_images to false).`),
            quiet: true,
          },
          when: `(${DOWNLOAD} and k3s_binary_url | length == 0) or k3s_binary_release_images`,
        },
        {
          name: "Create the folder of the staged binaries",
          module: "ansible.builtin.file",
          args: { path: "{{ k3s_binary_stage_dir }}", state: "directory", owner: "root", group: "root", mode: "0755" },
        },
        {
          name: "Download the K3s binary",
          when: DOWNLOAD,
          block: [
            {
              // get_url moves the file into place only after its checksum matched; an existing file that matches is kept.
              name: "Download the K3s binary, verified against the release's sha256",
              module: "ansible.builtin.get_url",
              args: {
                url: "{{ k3s_binary_download_url }}",
                checksum: "{{ k3s_binary_download_checksum }}",
                dest: "{{ k3s_binary_staged_path }}",
                owner: "root",
                group: "root",
                mode: "0755",
              },
            },
          ],
          rescue: [
            {
              name: "Explain the failed download",
              module: "ansible.builtin.fail",
              args: {
                msg: folded(`
                  {{ inventory_hostname }} could not download and verify {{ k3s_binary_download_url }}
                  against {{ k3s_binary_download_checksum }}: {{ ansible_failed_result.msg | default('') | trim | regex_replace('[.]$', '') }}.
                  Nothing on the node changed: the installed K3s binary was not touched and nothing was restarted.
                  A checksum that does not match means the server sends a damaged or altered file: a mirror must serve the
                  release's own files (the binary beside its sha256sum-<arch>.txt). A node without internet access needs
                  the air-gap path: set k3s_binary_airgap_path to a K3s binary on this machine (with its sha256 beside it),
                  or k3s_binary_release_url to a mirror of the release.`),
              },
            },
          ],
        },
        {
          name: "Stage the K3s binary from the air-gap path",
          when: AIRGAP,
          block: [
            {
              name: "Look at the air-gap binary on this machine",
              module: "ansible.builtin.stat",
              args: { path: "{{ k3s_binary_airgap_path }}", checksum_algorithm: "sha256", get_checksum: true },
              delegate_to: "localhost",
              become: false,
              register: "k3s_binary_airgap_file",
            },
            {
              name: "Check that the air-gap binary and its checksum are there",
              module: "ansible.builtin.assert",
              args: {
                that: [
                  "k3s_binary_airgap_path is abs",
                  "k3s_binary_airgap_file.stat.exists",
                  "k3s_binary_airgap_file.stat.isreg | default(false)",
                  "k3s_binary_airgap_sha256 is match('^[0-9a-f]{64}$')",
                ],
                fail_msg: folded(`
                  k3s_binary_airgap_path = '{{ k3s_binary_airgap_path }}' needs an absolute path to a K3s binary on this machine
                  and its sha256: in k3s_binary_airgap_checksum, {{ k3s_binary_airgap_path }}.sha256 or
                  {{ k3s_binary_airgap_path | dirname }}/sha256sum (found: '{{ k3s_binary_airgap_sha256 }}').
                  Build it (scripts/build-k3s.sh) or copy it there, or clear the air-gap path to download the release.`),
                quiet: true,
              },
            },
            {
              name: "Verify the air-gap binary before copying it",
              module: "ansible.builtin.assert",
              args: {
                that: ["k3s_binary_airgap_file.stat.checksum == k3s_binary_airgap_sha256"],
                fail_msg: folded(`
                  {{ k3s_binary_airgap_path }} has sha256 {{ k3s_binary_airgap_file.stat.checksum }}, but its checksum says
                  {{ k3s_binary_airgap_sha256 }}: the file is corrupt or not the build the checksum describes. Nothing was copied.`),
                quiet: true,
              },
            },
            {
              name: "Copy the air-gap binary to the node",
              module: "ansible.builtin.copy",
              args: { src: "{{ k3s_binary_airgap_path }}", dest: "{{ k3s_binary_staged_path }}", owner: "root", group: "root", mode: "0755" },
            },
            {
              name: "Checksum the binary on the node",
              module: "ansible.builtin.stat",
              args: { path: "{{ k3s_binary_staged_path }}", checksum_algorithm: "sha256", get_checksum: true },
              register: "k3s_binary_staged",
            },
            {
              name: "Verify the binary on the node",
              module: "ansible.builtin.assert",
              args: {
                that: ["k3s_binary_staged.stat.checksum == k3s_binary_airgap_sha256"],
                fail_msg: folded(`
                  {{ k3s_binary_staged_path }} on {{ inventory_hostname }} does not match the air-gap checksum after the copy.
                  The installed K3s binary was not touched.`),
                quiet: true,
              },
            },
          ],
        },
        {
          name: "Ask the staged binary for its version",
          module: "ansible.builtin.command",
          args: { argv: ["{{ k3s_binary_staged_path }}", "--version"] },
          register: "k3s_binary_version_output",
          changed_when: false,
        },
        {
          name: "Check that the staged binary is the pinned version",
          module: "ansible.builtin.assert",
          args: {
            that: ["k3s_binary_version in k3s_binary_version_output.stdout"],
            fail_msg: folded(`
              {{ k3s_binary_staged_path }} on {{ inventory_hostname }} says "{{ k3s_binary_version_output.stdout_lines | first | default('') }}",
              not {{ k3s_binary_version }}: the download URL, checksum or air-gap binary is for another release.
              The installed K3s binary was not touched.`),
            quiet: true,
          },
        },
        {
          name: "Create the air-gap images folder",
          module: "ansible.builtin.file",
          args: { path: "{{ k3s_binary_images_path }}", state: "directory", owner: "root", group: "root", mode: "0755" },
          when: "k3s_binary_release_images or k3s_binary_airgap_images_dir | length > 0",
        },
        {
          name: "Download the release's air-gap images",
          when: "k3s_binary_release_images",
          block: [
            {
              name: "Download the image tarball, verified against the release's sha256",
              module: "ansible.builtin.get_url",
              args: {
                url: "{{ k3s_binary_release_images_url }}",
                checksum: "{{ k3s_binary_release_images_checksum }}",
                dest: "{{ k3s_binary_images_path }}/{{ k3s_binary_release_images_url | basename }}",
                owner: "root",
                group: "root",
                mode: "0644",
              },
              register: "k3s_binary_release_images_result",
            },
          ],
          rescue: [
            {
              name: "Explain the failed image download",
              module: "ansible.builtin.fail",
              args: {
                msg: folded(`
                  {{ inventory_hostname }} could not download and verify {{ k3s_binary_release_images_url }}
                  against {{ k3s_binary_release_images_checksum }}: {{ ansible_failed_result.msg | default('') | trim | regex_replace('[.]$', '') }}.
                  The installed K3s binary was not touched and nothing was restarted. Set k3s_binary_release_images to false
                  (the nodes then pull the images from their registries), or put the tarball in k3s_binary_airgap_images_dir.`),
              },
            },
          ],
        },
        {
          name: "Copy the air-gap images",
          when: "k3s_binary_airgap_images_dir | length > 0",
          block: [
            {
              name: "Look at the air-gap images on this machine",
              module: "ansible.builtin.stat",
              args: { path: "{{ item }}", checksum_algorithm: "sha256", get_checksum: true },
              loop: "{{ k3s_binary_airgap_images }}",
              loop_control: { label: "{{ item | basename }}" },
              delegate_to: "localhost",
              become: false,
              register: "k3s_binary_airgap_image_files",
            },
            {
              name: "Verify the air-gap images the checksum file lists",
              module: "ansible.builtin.assert",
              args: {
                that: [
                  "k3s_binary_airgap_image_sums[item.item | basename] | default(item.stat.checksum) | lower == item.stat.checksum",
                ],
                fail_msg: folded(`
                  {{ item.item }} has sha256 {{ item.stat.checksum }}, but the sha256sum file says
                  {{ k3s_binary_airgap_image_sums[item.item | basename] }}: the tarball is corrupt or stale. Nothing was copied.`),
                quiet: true,
              },
              loop: "{{ k3s_binary_airgap_image_files.results }}",
              loop_control: { label: "{{ item.item | basename }}" },
            },
            {
              name: "Copy the image tarballs",
              module: "ansible.builtin.copy",
              args: { src: "{{ item }}", dest: "{{ k3s_binary_images_path }}/", owner: "root", group: "root", mode: "0644" },
              loop: "{{ k3s_binary_airgap_images }}",
              loop_control: { label: "{{ item | basename }}" },
              register: "k3s_binary_airgap_images_result",
            },
          ],
        },
        {
          // main.yml stages only what is not staged yet in this run: site.yml stages on every node at once, in
          // the play that prepares the OS, so that no agent downloads its binary after the servers are up.
          name: "Note that this version is staged",
          module: "ansible.builtin.set_fact",
          args: { [STAGED]: "{{ k3s_binary_version }}" },
        },
      ],
    },
  },
  tasks: [
    {
      // include, not import: a skipped include leaves the stage's registered results (changed images) as they were.
      name: "Stage the verified K3s binary (and images), unless this run did already",
      module: "ansible.builtin.include_tasks",
      args: { file: "stage.yml" },
      when: `${STAGED} | default('') != k3s_binary_version`,
    },
    {
      // copy replaces the file by a rename: a running K3s keeps its old binary until the handler restarts it.
      name: "Install the staged binary",
      module: "ansible.builtin.copy",
      args: { src: "{{ k3s_binary_staged_path }}", dest: "{{ k3s_binary_install_path }}", remote_src: true, owner: "root", group: "root", mode: "0755" },
      notify: K3S_BINARY_CHANGED,
    },
    {
      name: "Link the tools K3s includes",
      module: "ansible.builtin.file",
      args: { src: "{{ k3s_binary_install_path | basename }}", dest: "{{ k3s_binary_install_path | dirname }}/{{ item }}", state: "link" },
      loop: "{{ k3s_binary_links }}",
    },
    {
      // The images were staged without a restart (stage.yml may run alone, before a drain); K3s imports them at start.
      name: "Restart K3s for new images",
      module: "ansible.builtin.debug",
      args: {
        msg: "{{ 'New images in ' ~ k3s_binary_images_path ~ ': K3s imports them as it restarts.' if k3s_binary_new_images else 'No new images.' }}",
      },
      vars: {
        k3s_binary_new_images: folded(`
          {{ (k3s_binary_release_images_result | default({})) is changed
             or (k3s_binary_airgap_images_result | default({})) is changed }}`),
      },
      changed_when: "k3s_binary_new_images | bool",
      notify: K3S_BINARY_CHANGED,
    },
    {
      name: "Find staged binaries of other versions",
      module: "ansible.builtin.find",
      args: { paths: "{{ k3s_binary_stage_dir }}", patterns: ["k3s-*"], excludes: ["{{ k3s_binary_staged_path | basename }}"] },
      register: "k3s_binary_stale",
    },
    {
      name: "Remove them",
      module: "ansible.builtin.file",
      args: { path: "{{ item.path }}", state: "absent" },
      loop: "{{ k3s_binary_stale.files }}",
      loop_control: { label: "{{ item.path | basename }}" },
    },
  ],
};
