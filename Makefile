# K3s on Proxmox VE. `make` lists the targets; README.md explains the flow.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Where tools, the Python venv, the K3s build and the test rootfs are cached (outside the repository).
export K3SPVE_CACHE ?= $(HOME)/.cache/k3s-proxmox
# The operator's configuration; TFVARS=<path> selects another file.
export TFVARS ?= terraform.tfvars
# Where synth writes the Terraform JSON, and where Terraform keeps its state (terraform.k3s.tfstate beside it).
OUT ?= cdktf.out
STACK_DIR = $(OUT)/stacks/k3s
# The template's stack: synth makes it unless template_image = "prebuilt" (its state: terraform.template.tfstate).
TEMPLATE_DIR = $(OUT)/stacks/template
TOOLS_BIN := $(K3SPVE_CACHE)/tools/bin
TOFURC := $(K3SPVE_CACHE)/tools/tofurc
# Terraform or OpenTofu for apply/diff/destroy: TF=tofu|terraform, else whichever is on PATH, else the project's build.
TF ?= $(or $(shell command -v tofu 2>/dev/null),$(shell command -v terraform 2>/dev/null),$(TOOLS_BIN)/tofu)
# e2e scenarios to run (e2e/run.sh lists them); all by default.
SCENARIO ?= all
# Set PROVIDER_MIRROR=1 to install providers from the project's offline mirror instead of the registry.
PROVIDER_MIRROR ?=
TF_ENV := $(if $(PROVIDER_MIRROR),TF_CLI_CONFIG_FILE=$(TOFURC),)
NPX := npx --no-install
# Prefix for a command that needs the pinned Python tools (Ansible, linters, shellcheck) from scripts/setup-python.sh.
WITH_VENV = PATH="$$(bash scripts/setup-python.sh):$$PATH"
# No telemetry or version checks from cdktn and tofu: nothing leaves the machine but provider downloads.
export CHECKPOINT_DISABLE := 1
export DISABLE_VERSION_CHECK := true
# A TF_CLI_CONFIG_FILE naming a missing file only makes terraform and cdktn print warnings: drop it.
ifneq ($(TF_CLI_CONFIG_FILE),)
ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
unexport TF_CLI_CONFIG_FILE
endif
endif

# The inventory `make apply` writes; group_vars/all.yml beside it comes from `make synth`.
INVENTORY ?= ansible/inventory/hosts.ini
# Extra arguments for ansible-playbook, e.g. ANSIBLE_ARGS="--limit k3s-worker-3 -e @airgap.yml".
ANSIBLE_ARGS ?=
# CONFIRM=yes answers the question apply, destroy, restore, reset and the removal of nodes ask (needed without a
# terminal).
CONFIRM ?=
TF_APPROVE := $(if $(filter yes,$(CONFIRM)),-auto-approve,)
# How many agents make upgrade upgrades at a time (a number or a percentage).
BATCH ?= 1
# Where make backup puts the snapshots (not committed).
BACKUP_DIR ?= backups

.PHONY: help setup synth diff apply destroy template template-destroy provision upgrade status deploy-apps dashboard-token dashboard-admin-token backup restore remove-nodes reset test unit lint tf-test docs lab lab-down e2e bench

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install everything the project needs (npm packages, OpenTofu + providers, Python venv, bindings); idempotent
	@# npm ci installs exactly the lockfile and never rewrites it (it lists every platform's optional packages).
	@if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
	@bash scripts/setup-tools.sh
	@bash scripts/setup-python.sh >/dev/null
	@bash scripts/provider-schema.sh get

synth: ## Synthesize the Terraform JSON (cdktf.out/) and regenerate ansible/ and manifests/ from terraform.tfvars
	@# The configuration is checked first: the CDK CLI would print each problem twice (as it comes, and in its summary).
	@node_modules/.bin/node -r ts-node/register scripts/check-config.ts
	$(NPX) cdktn synth --output $(OUT)

# $(call tf,DIR,COMMAND ARGS): terraform/tofu in a synthesized stack, initialised first.
tf = cd $(1) && $(TF_ENV) $(TF) init -input=false >/dev/null && $(TF_ENV) $(TF) $(2)
# $(call template_tf,COMMAND ARGS): the same in the template's stack, or a note when nothing builds the template.
template_tf = if [ -d "$(TEMPLATE_DIR)" ]; then $(call tf,$(TEMPLATE_DIR),$(1)); \
  else echo "template_image = \"prebuilt\": nothing builds the template (template_vm_id is yours; README: \"A template made by hand\")"; fi

diff: synth ## Show what apply would change (terraform plan of the template and of the VMs)
	@$(call template_tf,plan -input=false)
	$(call tf,$(STACK_DIR),plan -input=false)

apply: synth ## Build the template if needed (make template), then create or update the VMs and write ansible/inventory/hosts.ini (nodes being removed are drained first)
	@if [ -f "$(INVENTORY)" ]; then $(MAKE) --no-print-directory remove-nodes; fi
	@$(call template_tf,apply -input=false $(TF_APPROVE))
	$(call tf,$(STACK_DIR),apply -input=false $(TF_APPROVE))

destroy: synth ## Destroy the VMs (asks for confirmation; CONFIRM=yes answers it); the template stays (make template-destroy)
	$(call tf,$(STACK_DIR),destroy -input=false $(TF_APPROVE))

template: synth ## Build the cloud-init template on the Proxmox node: download the image (checksum-verified), import it, make it a template
	@$(call template_tf,apply -input=false $(TF_APPROVE))

template-destroy: synth ## Remove the template and its downloaded image (asks; CONFIRM=yes); the VMs are full clones and do not need it
	@$(call template_tf,destroy -input=false $(TF_APPROVE))

# ansible-playbook with the project's venv and ansible.cfg, after checking the inventory and its group_vars exist.
# $(1): the playbook; $(2): its own extra arguments.
define playbook
	@[ -f "$(INVENTORY)" ] || { echo "$@: no inventory at $(INVENTORY): run 'make apply' first (it writes it), or pass INVENTORY=<path>" >&2; exit 1; }
	@[ -f "$(dir $(INVENTORY))group_vars/all.yml" ] || { echo "$@: no $(dir $(INVENTORY))group_vars/all.yml: run 'make synth' (apply runs it)" >&2; exit 1; }
	$(WITH_VENV) ANSIBLE_CONFIG=ansible/ansible.cfg \
	  ansible-playbook -i "$(INVENTORY)" ansible/$(1) $(2) $(ANSIBLE_ARGS)
endef

provision: ## Prepare the nodes and install K3s with Ansible (site.yml); writes ./kubeconfig
	$(call playbook,site.yml)

upgrade: synth ## Rolling K3s upgrade to k3s_version: servers one at a time, then agents BATCH at a time (drained, upgraded, uncordoned)
	$(call playbook,upgrade.yml,-e k3s_upgrade_batch="$(BATCH)")

deploy-apps: ## Deploy Traefik, the dashboard, Whoami and Uptime Kuma (manifests/, apps-deploy.yml); prints their URLs
	$(call playbook,apps-deploy.yml)

status: ## Is the control plane well? Each server's k3s, API, etcd member and VIP; fails when the API is unavailable
	@$(call playbook,status.yml)

dashboard-token: ## Print a 1-hour login token for the dashboard (stored nowhere; read-only under the hardened profile)
	@$(call playbook,dashboard-token.yml)

dashboard-admin-token: ## Print a 1-hour cluster-admin login token for the dashboard (stored nowhere)
	@$(call playbook,dashboard-token.yml,-e dashboard_admin=true)

backup: ## Save an etcd snapshot on the master and copy it to backups/ (BACKUP_DIR=…)
	$(call playbook,backup.yml,-e backup_dir="$(abspath $(BACKUP_DIR))")

restore: ## Restore the cluster from a snapshot: make restore SNAPSHOT=backups/<file> [CONFIRM=yes]
	@[ -n "$(SNAPSHOT)" ] || { echo "restore: name the snapshot: make restore SNAPSHOT=backups/<file> (make backup writes them there)" >&2; exit 2; }
	$(call playbook,restore.yml,-e restore_snapshot="$(abspath $(SNAPSHOT))" -e confirm="$(CONFIRM)")

remove-nodes: ## Drain and delete from Kubernetes the nodes terraform.tfvars no longer lists (make apply runs it)
	$(call playbook,remove-nodes.yml,-e confirm="$(CONFIRM)")

reset: ## Uninstall K3s from every node (asks first; CONFIRM=yes), so make provision starts clean
	$(call playbook,reset.yml,-e confirm="$(CONFIRM)")

test: unit lint tf-test ## Run every offline test: unit, lint, tofu validate + tofu test

unit: ## Unit tests (vitest)
	$(NPX) vitest run

lint: ## Type-check TypeScript; shellcheck the scripts; ansible-lint, yamllint and syntax-check the generated Ansible
	$(NPX) tsc -p tsconfig.json
	$(WITH_VENV) shellcheck scripts/*.sh lab/*.sh e2e/*.sh e2e/scenarios/*.sh .ci/run
	bash scripts/lint-ansible.sh

tf-test: ## tofu validate and tofu test on the synthesized stack with the real provider binaries
	bash scripts/tf-test.sh

lab: ## Root, Linux: a local lab — the Proxmox VE API simulator with real Debian 12 hosts as VMs; prints the tfvars lines to use it
	@bash lab/lab.sh up

lab-down: ## Remove the lab: the simulator, every host, its bridge and state
	@bash lab/lab.sh down

e2e: ## Root, Linux: the whole flow on the lab (make apply … make destroy) with a real K3s; SCENARIO=<name,…> runs some
	SCENARIO="$(SCENARIO)" bash e2e/run.sh

bench: ## Print how long synth, setup, test (and with BENCH_*=1: cold setup, the K3s build, provision) take here
	bash scripts/bench.sh

docs: ## Rewrite README.md's configuration reference from constructs/config/schema.ts
	$(NPX) ts-node --transpile-only scripts/docs.ts
