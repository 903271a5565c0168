//go:build e2e

// Package e2e runs relaycap end to end beside the real peers it serves: a
// private Postfix instance (postfix -c DIR, loopback ports only), an
// auth-only Dovecot for SASL, swaks as the SMTP client and an SMTP sink of
// our own that records every relayed message.
//
// The package holds the sandbox (shared by the tests in this folder, by
// cmd/demo and by cmd/loadgen); the scenarios are its _test.go files. Every
// file carries the e2e build tag, so `go build ./...` and `go test ./...`
// ignore it; run it with `make e2e` (go test -tags e2e ./test/e2e/...).
//
// The sandbox is generated per run under one temporary folder from the
// text/template files in testdata/. Start order follows the verified recipe
// (postfix check, Dovecot, sink, relaycap, postfix start) and Close stops
// every process in reverse order, each by its PID.
package e2e
