# tofu test for fixtures/workers-3.tfvars: a real apply of the synthesized stack with the Proxmox VMs
# overridden, so the real hashicorp/local provider writes the inventory; its exact content is asserted.
# Run by scripts/tf-test.sh, which passes -var output_dir=<a temporary folder>.

# The node's templates, as the template check reads them (constructs/template-check.ts).
override_data {
  target = data.proxmox_virtual_environment_vms.templates
  values = {
    vms = [{ vm_id = 9000, name = "debian12-cloud", node_name = "pve", status = "stopped", tags = [], template = true }]
  }
}

override_resource {
  target = proxmox_virtual_environment_vm.k3s-master-1
}

override_resource {
  target = proxmox_virtual_environment_vm.k3s-worker-1
}

override_resource {
  target = proxmox_virtual_environment_vm.k3s-worker-2
}

override_resource {
  target = proxmox_virtual_environment_vm.k3s-worker-3
}

run "apply_writes_the_inventory" {
  command = apply

  assert {
    condition     = file("${var.output_dir}/ansible/inventory/hosts.ini") == <<-INI
      # Written by `make apply` from terraform.tfvars (constructs/inventory.ts). Do not edit: change the configuration.

      [master]
      k3s-master-1 ansible_host=192.168.1.10

      [workers]
      k3s-worker-1 ansible_host=192.168.1.20
      k3s-worker-2 ansible_host=192.168.1.21
      k3s-worker-3 ansible_host=192.168.1.22

      [k3s_cluster:children]
      master
      workers

      [k3s_cluster:vars]
      ansible_user=debian
      ansible_ssh_private_key_file=/home/operator/.ssh/id_ed25519
    INI
    error_message = "hosts.ini is not what the configuration says: ${file("${var.output_dir}/ansible/inventory/hosts.ini")}"
  }
}
