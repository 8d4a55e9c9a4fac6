export { startEc2Service, type Ec2Service } from './server.ts';
