import { lifecycleSuite } from '../contract/lifecycle-contract.js';

// Under emulation one step (a client's connect) can take longer than the host's 10 s idle timeout.
lifecycleSuite({ wgKind: 'kernel', prefix: 'vml', underlayOctet: 73, lossAllowed: 3, idleTimeoutS: 30, controlPlane: false, driftRepair: false });
