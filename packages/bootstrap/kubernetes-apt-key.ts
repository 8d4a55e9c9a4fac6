/**
 * The primary key that signs pkgs.k8s.io's repositories, "isv:kubernetes OBS Project
 * <isv:kubernetes@build.opensuse.org>", the same key for every minor's repository. Its long id 234654DA9A296436 is
 * the one apt names for pkgs.k8s.io (kubernetes/release#3818, "EXPKEYSIG 234654DA9A296436 isv:kubernetes OBS
 * Project"); the full fingerprint is the one dnf shows when it imports pkgs.k8s.io/core:/stable:/v1.35/rpm/repodata/
 * repomd.xml.key, and devantler-tech/ksail's kubeadmbootstrap pins it beside the key itself (rsa2048, created
 * 2022-08-25, expiring 2026-12-29). Kubernetes renews the key's expiry without changing its fingerprint, so the pin
 * outlives each renewal; kubernetes/website#42718 asks for exactly this check, which the install docs skip.
 */
export const KUBERNETES_APT_KEY_FINGERPRINT = 'DE15B14486CD377B9E876E1A234654DA9A296436';

/** Where the fetched key waits for its check: nothing under /etc/apt trusts it before the check passes. */
const KEY_DIR = '/run/kiln-kubernetes-apt-key';
export const KUBERNETES_APT_KEYRING = '/etc/apt/keyrings/kubernetes-apt-keyring.gpg';

/**
 * Fetches pkgs.k8s.io's Release.key for the minor and installs it as the repository's only trusted key, but only when
 * the file holds exactly one primary key, with the pinned fingerprint: a second key in the file would be trusted by
 * apt as well (signed-by takes every key in the keyring). Anything else stops the boot before apt reads the repository.
 * The lines are indented for the package block of the boot script they go in.
 */
export function kubernetesAptKeyInstall(minor: string, fingerprint: string = KUBERNETES_APT_KEY_FINGERPRINT): string[] {
  const url = `https://pkgs.k8s.io/core:/stable:/v${minor}/deb/Release.key`;
  return [
    `  install -d -m 0700 ${KEY_DIR}`,
    `  curl -fsSL --retry 3 -o ${KEY_DIR}/Release.key "${url}"`,
    // --with-colons: each `pub` record is followed by its own `fpr` record (gnupg doc/DETAILS); subkeys' come later.
    `  KUBERNETES_APT_KEYS="$(gpg --batch --homedir ${KEY_DIR} --show-keys --with-colons ${KEY_DIR}/Release.key | awk -F: '$1 == "pub" { primary = 1; next } $1 == "fpr" && primary { print $10; primary = 0 }')"`,
    `  if [ "$KUBERNETES_APT_KEYS" != "${fingerprint}" ]; then`,
    `    echo "pkgs.k8s.io Release.key: not exactly the Kubernetes package signing key ${fingerprint} (found: \${KUBERNETES_APT_KEYS:-no key}); not trusting it" >&2`,
    `    rm -rf ${KEY_DIR}`,
    '    exit 1',
    '  fi',
    '  install -d -m 0755 /etc/apt/keyrings',
    `  gpg --batch --yes --homedir ${KEY_DIR} --dearmor -o ${KUBERNETES_APT_KEYRING} ${KEY_DIR}/Release.key`,
    `  rm -rf ${KEY_DIR}`,
  ];
}
