package policy

import (
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
	r := NewReader(strings.NewReader(in))
	req, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if req.SASLUsername != "alice" || req.ProtocolState != "RCPT" || req.Attributes != 4 {
		t.Fatalf("first request: %+v", req)
	}
	req, err = r.Read()
	if err != nil || req.SASLUsername != "bob" || req.ProtocolState != "DATA" || req.Recipient != "" {
		t.Fatalf("second request: %+v, %v", req, err)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after the last request: %v, want io.EOF", err)
	}
}

func TestReadRequestEmptyValue(t *testing.T) {
	req, err := NewReader(strings.NewReader("queue_id=\nsasl_username=\n\n")).Read()
	if err != nil || req.Attributes != 2 || req.QueueID != "" || req.SASLUsername != "" {
		t.Fatalf("%+v, %v", req, err)
	}
}

// TestReadRequestReusesRepeatedValues reads the requests of one SMTP
// session: a value repeated from the last request is kept, a changed one
// replaces it, and one missing from a request is empty there.
func TestReadRequestReusesRepeatedValues(t *testing.T) {
	in := "protocol_state=RCPT\nsasl_username=alice\nrecipient=a@x\nqueue_id=Q1\n\n" +
		"protocol_state=RCPT\nsasl_username=alice\nrecipient=b@x\nqueue_id=Q1\n\n" +
		"protocol_state=RCPT\nsasl_username=bob\nrecipient=b@x\n\n"
	r := NewReader(strings.NewReader(in))
	want := []Request{
		{ProtocolState: "RCPT", SASLUsername: "alice", Recipient: "a@x", QueueID: "Q1", Attributes: 4},
		{ProtocolState: "RCPT", SASLUsername: "alice", Recipient: "b@x", QueueID: "Q1", Attributes: 4},
		{ProtocolState: "RCPT", SASLUsername: "bob", Recipient: "b@x", Attributes: 3},
	}
	for i, w := range want {
		got, err := r.Read()
		if err != nil || got != w {
			t.Fatalf("request %d: %+v, %v; want %+v", i+1, got, err, w)
		}
	}
}

// TestReadRequestLongLine reads a line longer than the reader's buffer.
func TestReadRequestLongLine(t *testing.T) {
	login := strings.Repeat("l", 6000) + "@example.com"
	in := "protocol_state=RCPT\nsasl_username=" + login + "\nrecipient=a@x\n\nprotocol_state=RCPT\n\n"
	r := NewReader(strings.NewReader(in))
	req, err := r.Read()
	if err != nil || req.SASLUsername != login || req.Recipient != "a@x" {
		t.Fatalf("%.60q, %v", req.SASLUsername, err)
	}
	if req, err := r.Read(); err != nil || req.ProtocolState != "RCPT" || req.SASLUsername != "" {
		t.Fatalf("next request: %+v, %v", req, err)
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
		_, err = NewReader(strings.NewReader(body)).Read()
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
	if _, err := NewReader(strings.NewReader(b.String())).Read(); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d attributes: %v", MaxAttributes+1, err)
	}
	long := "name=" + strings.Repeat("v", MaxRequestBytes) + "\n\n"
	if _, err := NewReader(strings.NewReader(long)).Read(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("oversized request: %v", err)
	}
	exact := strings.Repeat("n=v\n", MaxAttributes) + "\n"
	if _, err := NewReader(strings.NewReader(exact)).Read(); err != nil {
		t.Errorf("exactly %d attributes: %v", MaxAttributes, err)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=a\n\n"))
	f.Add([]byte("a=b\r\n\r\nc=d\n\n"))
	f.Add([]byte("=x\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(strings.NewReader(string(data)))
		for range 10 {
			req, err := r.Read()
			if err != nil {
				return
			}
			if req.Attributes == 0 || req.Attributes > MaxAttributes {
				t.Fatalf("accepted a request with %d attributes", req.Attributes)
			}
			for _, v := range []string{req.ProtocolState, req.SASLUsername, req.QueueID, req.Recipient} {
				if strings.ContainsAny(v, "\n\x00") {
					t.Fatalf("value %q accepted", v)
				}
			}
		}
	})
}

// BenchmarkReadRequest reads Postfix's 31-attribute RCPT request, as one
// connection of an SMTP session sends it again and again.
func BenchmarkReadRequest(b *testing.B) {
	block := "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n" +
		"client_address=192.0.2.7\nclient_name=unknown\nclient_port=54321\nreverse_client_name=unknown\n" +
		"server_address=127.0.0.1\nserver_port=587\nhelo_name=client.example\nsender=alice@example.com\n" +
		"recipient=rcpt@remote.example\nrecipient_count=0\nqueue_id=\ninstance=2b5e.6744f1a2.8c1d3.0\n" +
		"size=0\netrn_domain=\nstress=\nsasl_method=PLAIN\nsasl_username=alice@example.com\nsasl_sender=\n" +
		"ccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n" +
		"encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n" +
		"policy_context=\ncompatibility_level=3.6\nmail_version=3.7.11\n\n"
	src := &repeater{block: []byte(block)}
	r := NewReader(src)
	b.ReportAllocs()
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		if req, err := r.Read(); err != nil || req.Attributes != 31 {
			b.Fatal(req, err)
		}
	}
}

// repeater reads the same block forever.
type repeater struct {
	block []byte
	off   int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	return n, nil
}
