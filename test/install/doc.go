// Package install holds the install test of the .deb (make package-check):
// dpkg -i on this Debian machine, the daemon started as the unit starts it,
// Debian's own Postfix and Dovecot wired from the shipped snippets, a
// message relayed through them, a reinstall over a local edit, and purge.
// It runs only with -tags 'e2e install', as root, and changes the system's
// /etc/postfix and /etc/dovecot only for its run, restoring every file.
package install
