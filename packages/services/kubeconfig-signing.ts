// Loaded on demand by kubeconfig.ts: an X.509 library and a YAML writer that no other request needs.
export { certificateAuthorityFromPem, issueKubeconfig } from '#bootstrap';
