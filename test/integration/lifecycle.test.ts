import { lifecycleSuite } from '../contract/lifecycle-contract.js';

lifecycleSuite({ wgKind: 'userspace', prefix: 'lc', underlayOctet: 98, lossAllowed: 0, idleTimeoutS: 10, controlPlane: true, driftRepair: true });
