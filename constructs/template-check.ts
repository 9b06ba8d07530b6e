/**
 * Stops a plan, before any VM is created, when the node has no template with `template_vm_id`: the provider's own
 * error ("unable to find configuration file for VM 9000") names neither the setting nor the fix.
 * One read of the node's VM templates (`proxmox_virtual_environment_vms`, a single `GET nodes/<node>/qemu`) and a
 * built-in `terraform_data` whose precondition the VMs depend on.
 */
import { Construct } from "constructs";
import { DataResource } from "cdktn";
import { DataProxmoxVirtualEnvironmentVms } from "../.gen/providers/proxmox/data-proxmox-virtual-environment-vms";

export interface TemplateCheckProps {
  /** Proxmox node the VMs are cloned on. */
  readonly node: string;
  /** The template's VM id (`template_vm_id`). */
  readonly templateVmId: number;
  /** Whether the template stack builds it (`make template`), rather than the operator by hand. */
  readonly built: boolean;
}

export class TemplateCheck extends Construct {
  /** What every VM depends on, so that no clone starts before the check passed. */
  readonly check: DataResource;

  constructor(scope: Construct, id: string, props: TemplateCheckProps) {
    super(scope, id);
    const templates = new DataProxmoxVirtualEnvironmentVms(this, "templates", {
      nodeName: props.node,
      filter: [{ name: "template", values: ["true"] }],
    });
    templates.overrideLogicalId("templates");
    const list = `data.${DataProxmoxVirtualEnvironmentVms.tfResourceType}.templates.vms`;
    this.check = new DataResource(this, "check", {
      input: { template_vm_id: props.templateVmId },
      lifecycle: {
        precondition: [
          {
            condition: `\${contains(${list}[*].vm_id, ${props.templateVmId})}`,
            errorMessage:
              `template_vm_id = ${props.templateVmId} (terraform.tfvars): node "${props.node}" has no VM template with that id ` +
              `(templates there: \${length(${list}) == 0 ? "none" : join(", ", [for t in ${list} : "\${t.vm_id} \${t.name}"])}). ` +
              (props.built
                ? "make apply builds it first (make template): run make apply again, or make template to see why it failed."
                : "Build it (README.md, \"A template made by hand\"), set template_vm_id to one of those, or let make template build it (template_image)."),
          },
        ],
      },
    });
    this.check.overrideLogicalId("template_check");
  }
}
