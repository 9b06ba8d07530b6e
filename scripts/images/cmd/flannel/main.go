// Command flannel is a CNI meta plugin compatible with the "flannel" entry of K3s's CNI config
// (type "flannel" with a "delegate" object, then portmap and bandwidth). It reads the node's pod subnet
// that flannel wrote to /run/flannel/subnet.env, turns it into a bridge + host-local configuration and
// delegates ADD/CHECK/DEL to those plugins (found through CNI_PATH).
//
// Why our own: K3s pins github.com/flannel-io/cni-plugin, which the Go module proxy available to this
// project does not serve, and the older copy inside containernetworking/plugins only speaks CNI <= 0.4.0
// while K3s writes cniVersion 1.0.0. This implementation follows the plugin's documented behaviour.
//
// Delegate defaults: type bridge, name = network name, mtu = FLANNEL_MTU, ipMasq = !FLANNEL_IPMASQ (flannel
// masquerades itself when IPMASQ is true), isGateway = true, ipam = host-local over FLANNEL_SUBNET (and
// FLANNEL_IPV6_SUBNET) with routes to FLANNEL_NETWORK (and FLANNEL_IPV6_NETWORK). The delegate config of
// every container is kept in dataDir/<container id> so DEL works even after subnet.env changed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

const (
	defaultSubnetFile = "/run/flannel/subnet.env"
	defaultDataDir    = "/var/lib/cni/flannel"
	programVersion    = "1.0.0-k3spve"
)

// netConf is the plugin's entry in the network configuration list.
type netConf struct {
	types.NetConf
	SubnetFile string                 `json:"subnetFile"`
	DataDir    string                 `json:"dataDir"`
	Delegate   map[string]interface{} `json:"delegate"`
}

// subnetEnv is what flannel wrote about this node.
type subnetEnv struct {
	networks  []*net.IPNet
	subnet    *net.IPNet
	ip6Nets   []*net.IPNet
	ip6Subnet *net.IPNet
	mtu       *uint
	ipMasq    *bool
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("flannel CNI plugin (k3s-proxmox) " + programVersion)
		return
	}
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Check: cmdCheck, Del: cmdDel},
		version.All, "flannel CNI plugin (k3s-proxmox) "+programVersion)
}

func loadConf(stdin []byte) (*netConf, error) {
	n := &netConf{SubnetFile: defaultSubnetFile, DataDir: defaultDataDir}
	if err := json.Unmarshal(stdin, n); err != nil {
		return nil, fmt.Errorf("failed to parse network configuration: %w", err)
	}
	if n.Delegate == nil {
		n.Delegate = map[string]interface{}{}
	}
	return n, nil
}

func parseCIDRList(v string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseSubnet keeps the address as the network address: host-local wants a canonical subnet.
func parseSubnet(v string) (*net.IPNet, error) {
	_, n, err := net.ParseCIDR(strings.TrimSpace(v))
	return n, err
}

func loadSubnetEnv(path string) (*subnetEnv, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	se := &subnetEnv{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(s.Text()), "=")
		if !ok {
			continue
		}
		switch key {
		case "FLANNEL_NETWORK":
			se.networks, err = parseCIDRList(val)
		case "FLANNEL_SUBNET":
			se.subnet, err = parseSubnet(val)
		case "FLANNEL_IPV6_NETWORK":
			se.ip6Nets, err = parseCIDRList(val)
		case "FLANNEL_IPV6_SUBNET":
			se.ip6Subnet, err = parseSubnet(val)
		case "FLANNEL_MTU":
			var m uint64
			m, err = strconv.ParseUint(val, 10, 32)
			mtu := uint(m)
			se.mtu = &mtu
		case "FLANNEL_IPMASQ":
			var b bool
			b, err = strconv.ParseBool(val)
			se.ipMasq = &b
		}
		if err != nil {
			return nil, fmt.Errorf("%s: bad %s=%q: %w", path, key, val, err)
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	var missing []string
	if se.subnet == nil && se.ip6Subnet == nil {
		missing = append(missing, "FLANNEL_SUBNET or FLANNEL_IPV6_SUBNET")
	}
	if se.mtu == nil {
		missing = append(missing, "FLANNEL_MTU")
	}
	if se.ipMasq == nil {
		missing = append(missing, "FLANNEL_IPMASQ")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s is missing %s", path, strings.Join(missing, ", "))
	}
	return se, nil
}

// delegateConf builds the configuration handed to the delegate plugin (bridge by default).
func delegateConf(n *netConf, se *subnetEnv) ([]byte, error) {
	d := map[string]interface{}{}
	for k, v := range n.Delegate {
		d[k] = v
	}
	d["name"] = n.Name
	d["cniVersion"] = n.CNIVersion
	if _, ok := d["type"]; !ok {
		d["type"] = "bridge"
	}
	if _, ok := d["mtu"]; !ok {
		d["mtu"] = *se.mtu
	}
	if d["type"] == "bridge" {
		if _, ok := d["ipMasq"]; !ok {
			d["ipMasq"] = !*se.ipMasq
		}
		if _, ok := d["isGateway"]; !ok {
			d["isGateway"] = true
		}
	}

	var ranges [][]map[string]string
	var routes []map[string]string
	if se.subnet != nil {
		ranges = append(ranges, []map[string]string{{"subnet": se.subnet.String()}})
		for _, nw := range se.networks {
			routes = append(routes, map[string]string{"dst": nw.String()})
		}
	}
	if se.ip6Subnet != nil {
		ranges = append(ranges, []map[string]string{{"subnet": se.ip6Subnet.String()}})
		for _, nw := range se.ip6Nets {
			routes = append(routes, map[string]string{"dst": nw.String()})
		}
	}
	ipam := map[string]interface{}{"type": "host-local", "ranges": ranges}
	if len(routes) > 0 {
		ipam["routes"] = routes
	}
	d["ipam"] = ipam
	return json.Marshal(d)
}

func stateFile(dataDir, containerID string) string {
	return filepath.Join(dataDir, containerID)
}

func delegateType(conf []byte) (string, error) {
	var t struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(conf, &t); err != nil {
		return "", err
	}
	if t.Type == "" {
		return "", errors.New("delegate configuration has no type")
	}
	return t.Type, nil
}

func cmdAdd(args *skel.CmdArgs) error {
	n, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	se, err := loadSubnetEnv(n.SubnetFile)
	if err != nil {
		return fmt.Errorf("reading flannel subnet (is flanneld running?): %w", err)
	}
	conf, err := delegateConf(n, se)
	if err != nil {
		return err
	}
	typ, err := delegateType(conf)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
		return err
	}
	path := stateFile(n.DataDir, args.ContainerID)
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		return err
	}
	// On failure the saved configuration stays: the runtime follows a failed ADD with a DEL, which
	// needs it to release whatever the delegate did set up (and must not touch an earlier, working ADD).
	result, err := invoke.DelegateAdd(context.TODO(), typ, conf, nil)
	if err != nil {
		return err
	}
	return types.PrintResult(result, n.CNIVersion)
}

func cmdDel(args *skel.CmdArgs) error {
	n, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	path := stateFile(n.DataDir, args.ContainerID)
	conf, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // never added, or already deleted: DEL must be idempotent
	}
	if err != nil {
		return err
	}
	typ, err := delegateType(conf)
	if err != nil {
		_ = os.Remove(path)
		return nil // corrupt state: nothing sensible left to delete
	}
	if err := invoke.DelegateDel(context.TODO(), typ, conf, nil); err != nil {
		return err
	}
	return os.Remove(path)
}

func cmdCheck(args *skel.CmdArgs) error {
	n, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	conf, err := os.ReadFile(stateFile(n.DataDir, args.ContainerID))
	if err != nil {
		return fmt.Errorf("no saved delegate configuration for %s: %w", args.ContainerID, err)
	}
	var d map[string]interface{}
	if err := json.Unmarshal(conf, &d); err != nil {
		return err
	}
	var raw map[string]interface{}
	if err := json.Unmarshal(args.StdinData, &raw); err == nil {
		if prev, ok := raw["prevResult"]; ok {
			d["prevResult"] = prev
		}
	}
	conf, err = json.Marshal(d)
	if err != nil {
		return err
	}
	typ, err := delegateType(conf)
	if err != nil {
		return err
	}
	return invoke.DelegateCheck(context.TODO(), typ, conf, nil)
}
