package policy

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadRequestManyPerConnection(t *testing.T) {
	in := "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=alice\nunknown_future_attr=x=y\n\n" +
		"sasl_username=bob\r\nprotocol_state=DATA\r\n\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	req, err := ReadRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if req["sasl_username"] != "alice" || req["protocol_state"] != "RCPT" || req["unknown_future_attr"] != "x=y" {
		t.Fatalf("first request: %v", req)
	}
	req, err = ReadRequest(r)
	if err != nil || req["sasl_username"] != "bob" || req["protocol_state"] != "DATA" {
		t.Fatalf("second request: %v, %v", req, err)
	}
	if _, err := ReadRequest(r); err != io.EOF {
		t.Fatalf("after the last request: %v, want io.EOF", err)
	}
}

func TestReadRequestEmptyValue(t *testing.T) {
	req, err := ReadRequest(bufio.NewReader(strings.NewReader("queue_id=\nsasl_username=\n\n")))
	if err != nil || len(req) != 2 || req["queue_id"] != "" {
		t.Fatalf("%v, %v", req, err)
	}
}

// TestReadRequestBadInput reads each file in testdata/bad: a request that
// must be refused with an error mentioning the text in the file's first
// line ("# want: …").
func TestReadRequestBadInput(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.txt")
	if len(files) == 0 {
		t.Fatal("no bad inputs found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		header, body, _ := strings.Cut(string(data), "\n")
		want := strings.TrimPrefix(header, "# want: ")
		_, err = ReadRequest(bufio.NewReader(strings.NewReader(body)))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrMalformed mentioning %q", f, err, want)
		}
	}
}

func TestReadRequestLimits(t *testing.T) {
	var b strings.Builder
	for i := range MaxAttributes + 1 {
		b.WriteString("a" + strings.Repeat("x", i%5) + "=1\n")
	}
	b.WriteString("\n")
	if _, err := ReadRequest(bufio.NewReader(strings.NewReader(b.String()))); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d attributes: %v", MaxAttributes+1, err)
	}
	long := "name=" + strings.Repeat("v", MaxRequestBytes) + "\n\n"
	if _, err := ReadRequest(bufio.NewReader(strings.NewReader(long))); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("oversized request: %v", err)
	}
	exact := strings.Repeat("n=v\n", MaxAttributes) + "\n"
	if _, err := ReadRequest(bufio.NewReader(strings.NewReader(exact))); err != nil {
		t.Errorf("exactly %d attributes: %v", MaxAttributes, err)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=a\n\n"))
	f.Add([]byte("a=b\r\n\r\nc=d\n\n"))
	f.Add([]byte("=x\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(strings.NewReader(string(data)))
		for range 10 {
			req, err := ReadRequest(r)
			if err != nil {
				return
			}
			if len(req) == 0 || len(req) > MaxAttributes {
				t.Fatalf("accepted a request with %d attributes", len(req))
			}
			for k := range req {
				if k == "" || strings.ContainsAny(k, "=\n") {
					t.Fatalf("bad name %q accepted", k)
				}
			}
		}
	})
}
