// Command mergeimages writes the images of several docker-archive tarballs (e.g. the ones mkimage writes) into one
// multi-image docker-archive tarball: the format of K3s's release asset k3s-airgap-images-<arch>.tar, which K3s
// imports from /var/lib/rancher/k3s/agent/images/ at start like any other tarball there. Every tag of every input
// is kept; layers shared by images are stored once. The archive is written by go-containerregistry's multi-image
// tarball writer, with its entries in a fixed order (configs and layers by name, manifest.json last), so the same
// inputs always give the same bytes. The result is read back and every tag checked against its input's digest.
//
//	mergeimages -out k3s-airgap-images-amd64.tar images/pause.tar images/echo.tar
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	out := flag.String("out", "", "output tarball (required)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mergeimages -out merged.tar image.tar...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mergeimages:", err)
		os.Exit(1)
	}
}

func run(out string, inputs []string) error {
	refToImage := map[name.Reference]v1.Image{}
	want := map[string]v1.Hash{} // tag -> image digest
	for _, in := range inputs {
		manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(in) })
		if err != nil {
			return fmt.Errorf("%s: not a docker-archive tarball: %w", in, err)
		}
		for _, desc := range manifest {
			if len(desc.RepoTags) == 0 {
				return fmt.Errorf("%s: an image without a tag (config %s): K3s imports untagged images without a name", in, desc.Config)
			}
			for _, t := range desc.RepoTags {
				tag, err := name.NewTag(t)
				if err != nil {
					return fmt.Errorf("%s: bad tag %q: %w", in, t, err)
				}
				if _, dup := want[tag.String()]; dup {
					return fmt.Errorf("%s: tag %s is in more than one input", in, tag)
				}
				img, err := tarball.ImageFromPath(in, &tag)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", in, tag, err)
				}
				digest, err := img.Digest()
				if err != nil {
					return fmt.Errorf("%s: %s: %w", in, tag, err)
				}
				refToImage[tag] = img
				want[tag.String()] = digest
			}
		}
	}

	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(refToImage, &buf); err != nil {
		return err
	}
	sorted, err := sortEntries(buf.Bytes())
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, sorted, 0o644); err != nil {
		return err
	}
	if err := check(tmp, want); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s does not read back as written: %w", tmp, err)
	}
	return os.Rename(tmp, out)
}

// sortEntries rewrites a tarball with its regular files sorted by name and manifest.json last (where the writer
// puts it: readers that stream the archive may expect the blobs first).
func sortEntries(archive []byte) ([]byte, error) {
	type entry struct {
		hdr  *tar.Header
		body []byte
	}
	var entries []entry
	var manifest *entry
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		e := entry{hdr, body}
		if hdr.Name == "manifest.json" {
			manifest = &e
		} else {
			entries = append(entries, e)
		}
	}
	if manifest == nil {
		return nil, errors.New("the image writer wrote no manifest.json")
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })
	entries = append(entries, *manifest)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, e := range entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// check reads every tag back from the written archive and compares its digest with the input's.
func check(path string, want map[string]v1.Hash) error {
	manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return err
	}
	got := 0
	for _, desc := range manifest {
		got += len(desc.RepoTags)
	}
	if got != len(want) {
		return fmt.Errorf("%d tags, want %d", got, len(want))
	}
	for t, digest := range want {
		tag, err := name.NewTag(t)
		if err != nil {
			return err
		}
		img, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		d, err := img.Digest()
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		if d != digest {
			return fmt.Errorf("%s: digest %s, input has %s", t, d, digest)
		}
	}
	return nil
}
