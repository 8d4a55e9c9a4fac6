/**
 * A kubelet's serving certificate request on a Debian EC2 machine, and kubelet-csr-approver's verdict on it, as the
 * upstream components decide them. The sandbox's nodes keep their short sandbox names; these functions play what a
 * real machine of the cluster would ask for and what the approver Kiln installs would answer.
 */

/** An IPv4 address as a number. */
function ipv4(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,3}$/.test(part) || Number(part) > 255)) return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

function inCidr(address: string, cidr: string): boolean {
  const [base = '', bits = ''] = cidr.split('/');
  const value = ipv4(address);
  const start = ipv4(base);
  const prefix = Number(bits);
  if (value === undefined || start === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return false;
  const size = 2 ** (32 - prefix);
  return Math.floor(value / size) === Math.floor(start / size);
}

/**
 * The private DNS domain EC2 gives a VPC's instances and its default DHCP option set hands them as their search domain:
 * `ec2.internal` in us-east-1, `<region>.compute.internal` elsewhere (Amazon EC2 User Guide, "Amazon EC2 instance
 * hostname types", IP name: "ip-10-24-34-0.ec2.internal" / "ip-10-24-34-0.us-west-2.compute.internal").
 */
export function ec2PrivateDomain(region: string): string {
  return region === 'us-east-1' ? 'ec2.internal' : `${region}.compute.internal`;
}

/**
 * The hostname of a Debian cloud image on EC2 with the subnet's default IP-name hostname type. EC2's metadata gives
 * `local-hostname` = `ip-10-0-1-23.<domain>`; cloud-init's set_hostname/update_hostname (canonical/cloud-init@25.1.2
 * cloudinit/config/cc_set_hostname.py, util.get_hostname_fqdn, sources/__init__.py DataSource.get_hostname) split it
 * into the short hostname `ip-10-0-1-23` and the FQDN, and the distro writes the FQDN only with
 * `prefer_fqdn_over_hostname` (cloudinit/distros/__init__.py `_select_hostname`), which the Debian distro leaves at
 * its default False (cloudinit/distros/debian.py sets no prefer_fqdn; config/cloud.cfg.tmpl sets
 * `preserve_hostname: false` and no prefer_fqdn_over_hostname for debian). Debian's cloud images add no
 * cloud.cfg.d for EC2 (debian-cloud-images config_space has cloud.cfg.d files for Azure and Vagrant only, as kept in
 * GoCarrot/debian-cloud-images). So the kernel hostname, the one the kubelet and kubeadm read, is the short name.
 */
export function debianEc2Hostname(privateIp: string): string {
  return `ip-${privateIp.replaceAll('.', '-')}`;
}

/**
 * What the VPC's DNS answers a pod of the cluster: `ip-a-b-c-d.<domain>` of an instance in the VPC resolves to its
 * address (enableDnsSupport and enableDnsHostnames, as Kiln's VPC sets them), and a name without a dot is also tried
 * under the node's search domain, which the kubelet appends to a ClusterFirst pod's search list.
 */
export function vpcResolver(region: string, instanceIps: readonly string[]): (name: string) => string[] {
  const domain = ec2PrivateDomain(region);
  return (name) => {
    const fqdn = name.includes('.') ? name : `${name}.${domain}`;
    return instanceIps.filter((ip) => fqdn === `${debianEc2Hostname(ip)}.${domain}`);
  };
}

/** The parts of a kubernetes.io/kubelet-serving CertificateSigningRequest the approver reads. */
export interface KubeletServingRequest {
  /** spec.username: who created the CSR. */
  username: string;
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  /** spec.expirationSeconds, which the kubelet's certificate manager leaves unset. */
  expirationSeconds?: number;
}

/**
 * The serving CSR a kubelet without a cloud provider sends (serverTLSBootstrap). Its node name and its Hostname
 * address are the hostname (kubeadm passes --hostname-override only for a node name that differs from it,
 * cmd/kubeadm/app/phases/kubelet/flags.go buildKubeletArgMapCommon, and Kiln names none); its addresses
 * are InternalIP (the node name looked up in DNS) and Hostname (kubernetes/kubernetes pkg/kubelet/nodestatus/setters.go
 * NodeAddress, the branch without a cloud); the request names `system:node:<node name>` and the Hostname/DNS addresses
 * as DNS names, the IP addresses as IPs (pkg/kubelet/certificate/kubelet.go newGetTemplateFn,
 * addressesToHostnamesAndIPs).
 */
export function kubeletServingRequest(hostname: string, internalIp: string): KubeletServingRequest {
  const nodeName = hostname.toLowerCase();
  return { username: `system:node:${nodeName}`, commonName: `system:node:${nodeName}`, dnsNames: [nodeName], ipAddresses: [internalIp] };
}

/** The chart values Kiln sets for kubelet-csr-approver, by the chart's names (charts/kubelet-csr-approver/values.yaml). */
export interface KubeletCsrApproverValues {
  providerRegex: string;
  providerIpPrefixes: readonly string[];
  bypassDnsResolution: boolean;
  allowedDnsNames: number;
  maxExpirationSeconds: string;
}

export type CsrVerdict = { approved: true } | { approved: false; reason: string };

/**
 * postfinance/kubelet-csr-approver@v1.2.14 internal/controller/csr_controller.go Reconcile, in its order: the
 * requester must be a node and the CN that node; then regex_ip_checks.go DNSCheck (at most allowedDnsNames DNS names,
 * each prefixed by the node name and matched by providerRegex, each resolving, every resolved address inside
 * providerIpPrefixes, every SAN IP among the resolved addresses), WhitelistedIPCheck (every SAN IP inside
 * providerIpPrefixes) and the expiration limit. The regex is Go's RE2; the patterns Kiln renders read the same in
 * JavaScript.
 */
export function kubeletCsrApproverVerdict(values: KubeletCsrApproverValues, request: KubeletServingRequest, resolve: (name: string) => string[]): CsrVerdict {
  const deny = (reason: string): CsrVerdict => ({ approved: false, reason });
  if (!request.username.startsWith('system:node:')) return deny('CSR Spec.Username is not prefixed with system:node:');
  if (request.dnsNames.length + request.ipAddresses.length === 0) return deny('The x509 Cert Request SAN contains neither an IP address nor a DNS name');
  if (request.commonName !== request.username) return deny('CSR username does not match the parsed x509 certificate request commonname');
  if (request.dnsNames.length > values.allowedDnsNames) return deny('The x509 Cert Request contains more DNS names than allowed through the config flag');
  const nodeName = request.username.slice('system:node:'.length);
  const providerRegex = new RegExp(values.providerRegex);
  const inPrefixes = (address: string) => values.providerIpPrefixes.some((cidr) => inCidr(address, cidr));
  for (const name of request.dnsNames) {
    if (!name.startsWith(nodeName)) return deny('The SAN DNS Name in the x509 CSR is not prefixed by the node name (hostname)');
    if (!providerRegex.test(name)) return deny('The SAN DNS name in the x509 CR is not allowed by the Cloud provider regex');
  }
  if (!values.bypassDnsResolution && request.dnsNames.length > 0) {
    const resolved: string[] = [];
    for (const name of request.dnsNames) {
      const addresses = resolve(name);
      if (addresses.length === 0) return deny('The SAN DNS Name could not be resolved, denying the CSR');
      resolved.push(...addresses);
    }
    const outside = resolved.find((address) => !inPrefixes(address));
    if (outside !== undefined) return deny(`One of the resolved IP addresses, ${outside},isn't part of the provider-specified set of whitelisted IP. denying the certificate`);
    const unresolved = request.ipAddresses.find((address) => !resolved.includes(address));
    if (unresolved !== undefined) return deny(`One of the SAN IP addresses, ${unresolved}, is not contained in the set of resolved IP addresses, denying the CSR.`);
  }
  const notAllowed = request.ipAddresses.find((address) => !inPrefixes(address));
  if (notAllowed !== undefined) return deny(`One of the SAN IP addresses, ${notAllowed}, is not partof the allowed IP Prefixes/Subnets, denying the CSR.`);
  if (request.expirationSeconds !== undefined && request.expirationSeconds > Number(values.maxExpirationSeconds)) {
    return deny('CSR spec.expirationSeconds is longer than the maximum allowed expiration second');
  }
  return { approved: true };
}
