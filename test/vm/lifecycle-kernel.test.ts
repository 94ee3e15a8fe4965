import { lifecycleSuite } from '../contract/lifecycle-contract.js';

lifecycleSuite({ wgKind: 'kernel', prefix: 'vml', underlayOctet: 73, lossAllowed: 3, idleTimeoutS: 40 });
