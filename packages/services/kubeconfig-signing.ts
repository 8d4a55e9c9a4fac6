// Loaded on demand by kubeconfig.ts: an X.509 library and a YAML writer that no other request needs.
export { ADMIN_GROUP, certificateAuthorityFromPem, issueAdminKubeconfig } from '#bootstrap';
