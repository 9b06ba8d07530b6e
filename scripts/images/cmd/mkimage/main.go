// Command mkimage packs one static binary into a single-layer container image and writes it as a
// docker-archive tarball (the format `docker save` writes and containerd imports, e.g. from K3s's
// agent/images directory). No registry, no Docker engine: the image is assembled in memory with
// go-containerregistry. Timestamps are fixed, so the same binary always gives the same image digest.
//
//	mkimage -binary ./pause -tag docker.io/rancher/mirrored-pause:3.6 -user 65535:65535 -out pause.tar
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	var (
		binary   = flag.String("binary", "", "static binary to put in the image (required)")
		inImage  = flag.String("path", "", "its path inside the image (default /<basename of -binary>)")
		tag      = flag.String("tag", "", "image reference, e.g. docker.io/rancher/mirrored-pause:3.6 (required)")
		out      = flag.String("out", "", "output tarball (required)")
		user     = flag.String("user", "", "user[:group] the entrypoint runs as")
		ports    = flag.String("ports", "", "comma-separated exposed ports, e.g. 8080/tcp")
		arch     = flag.String("arch", runtime.GOARCH, "image architecture")
		printDig = flag.Bool("print-digest", false, "print the image digest after writing")
	)
	flag.Parse()
	if *binary == "" || *tag == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if *inImage == "" {
		*inImage = "/" + path.Base(*binary)
	}
	if err := run(*binary, *inImage, *tag, *out, *user, *ports, *arch, *printDig); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(binary, inImage, tagRef, out, user, ports, arch string, printDigest bool) error {
	ref, err := name.NewTag(tagRef)
	if err != nil {
		return fmt.Errorf("bad tag %q: %w", tagRef, err)
	}
	content, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	layerTar, err := singleFileTar(strings.TrimPrefix(inImage, "/"), content)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}

	epoch := v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg := &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      epoch,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{inImage},
			Env:        []string{"PATH=/"},
			User:       user,
			WorkingDir: "/",
		},
	}
	if ports != "" {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range strings.Split(ports, ",") {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: epoch, CreatedBy: "k3s-proxmox mkimage " + path.Base(binary)},
	})
	if err != nil {
		return err
	}

	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	if printDigest {
		d, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Println(d.String())
	}
	return nil
}

// singleFileTar returns an uncompressed tar holding one executable file (and its parent directories).
func singleFileTar(name string, content []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	dir := path.Dir(name)
	if dir != "." {
		parts := strings.Split(dir, "/")
		for i := range parts {
			if err := tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeDir, Name: strings.Join(parts[:i+1], "/") + "/", Mode: 0o755, ModTime: mtime,
			}); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(content)), ModTime: mtime,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(content); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
