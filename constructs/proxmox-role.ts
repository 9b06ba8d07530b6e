/**
 * The privileges the API token behind `make apply` needs, per Proxmox VE version: what README.md's
 * `pveum role add` lines list (a test keeps them equal) and what the lab's simulated token holds.
 *
 * PVE 9 replaced VM.Monitor by the VM.GuestAgent.* privileges (pve-access-control 9.0.2); `pveum` refuses a
 * privilege its version does not know, so each version has its own line. Sys.AccessNetwork exists since
 * pve-access-control 8.1.2 (PVE 8.2); without it download-url needs Sys.Audit and Sys.Modify on `/`.
 */

/** The PVE versions the README gives a role line for (and the simulator can simulate). */
export type PveRelease = "8" | "9";

const COMMON = [
  "VM.Allocate", // clone target, destroy
  "VM.Clone", // clone the template
  "VM.Audit", // read configs, status, the template list
  "VM.Config.CDROM", // the cloud-init drive
  "VM.Config.Cloudinit", // the cloud-init drive, user, keys, addresses, DNS
  "VM.Config.CPU", // cores, CPU type
  "VM.Config.Disk", // scsi0 and its resize
  "VM.Config.HWType", // SCSI controller, serial port
  "VM.Config.Memory", // memory, balloon
  "VM.Config.Network", // net0
  "VM.Config.Options", // agent, on-boot, OS type, tags, name, description
  "VM.PowerMgmt", // start, stop, reboot
  "Datastore.AllocateSpace", // the disks on the datastore
  "Datastore.Audit", // read the disks' volumes; the template's disk is imported from the image (make template)
  "Datastore.AllocateTemplate", // make template: the node downloads the cloud image to the image storage
  "Datastore.Allocate", // make template-destroy: delete the downloaded image
  "SDN.Use", // the bridge
  "Sys.Audit", // node and task reads
  "Sys.AccessNetwork", // make template: the node fetches the image's URL (PVE 8.2+; PVE 8.4+ imports qcow2 images)
] as const;

export const TERRAFORM_ROLE_PRIVILEGES: Readonly<Record<PveRelease, readonly string[]>> = {
  // The guest agent's network-get-interfaces (the VMs' addresses).
  "8": [...COMMON, "VM.Monitor"],
  "9": [...COMMON, "VM.GuestAgent.Audit"],
};
