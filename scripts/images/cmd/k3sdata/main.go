// Command k3sdata packs a K3s data directory (bin/ with the inner k3s binary, its symlinks and the agent
// helpers, plus etc/) into the zstd-compressed tarball that the outer `k3s` binary embeds and unpacks into
// /var/lib/rancher/k3s/data/<hash>/ on first start. Before packing it writes bin/.sha256sums and bin/.links,
// the two lists K3s verifies after unpacking. Entries are sorted and timestamps fixed, so identical inputs
// give a byte-identical archive (and so the same data-dir hash).
//
//	k3sdata -dir build/data-root -out build/data.tar.zst
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

func main() {
	dir := flag.String("dir", "", "directory holding bin/ (and optionally etc/) (required)")
	out := flag.String("out", "", "output .tar.zst (required)")
	flag.Parse()
	if *dir == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := writeLists(filepath.Join(*dir, "bin")); err != nil {
		fail(err)
	}
	if err := pack(*dir, *out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "k3sdata:", err)
	os.Exit(1)
}

// writeLists writes "<sha256>  <file>" for every regular file and "<link> <target>" for every symlink
// below bin/, excluding the dot files themselves.
func writeLists(bin string) error {
	var sums, links []string
	err := filepath.WalkDir(bin, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(bin, p)
		if rel == "." {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			links = append(links, rel+" "+target)
		case d.Type().IsRegular():
			sum, err := sha256File(p)
			if err != nil {
				return err
			}
			sums = append(sums, sum+" "+rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(sums) == 0 || len(links) == 0 {
		return fmt.Errorf("%s needs at least one file and one symlink (K3s refuses empty lists)", bin)
	}
	sort.Slice(sums, func(i, j int) bool { return strings.Fields(sums[i])[1] < strings.Fields(sums[j])[1] })
	sort.Strings(links)
	if err := os.WriteFile(filepath.Join(bin, ".sha256sums"), []byte(strings.Join(sums, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bin, ".links"), []byte(strings.Join(links, "\n")+"\n"), 0o644)
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func pack(root, out string) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	mtime := time.Unix(0, 0)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: rel, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		case fi.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, rel+"/", 0o755
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), int64(fi.Mode().Perm())
		default:
			return fmt.Errorf("%s: unsupported file type %v", p, fi.Mode())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
