/**
 * @metaloop/testing: the test servers, stand-ins and helpers of every package's tests, in one
 * private workspace (docs/architecture.md: never in a product package's index or dist). This entry point
 * loads @metaloop/shared only, so product packages' unit tests can use it; the heavier ones are
 * subpaths:
 *   @metaloop/testing/cluster        coordinator and worker processes on a real nats-server (chaos, e2e)
 *   @metaloop/testing/chaos          ChaosCluster: the chaos suites' set-up (processes replaced, stopped by pid)
 *   @metaloop/testing/tfjs           the same on the `tensorflow` backend (Conv4, unfused MLP runs)
 *   @metaloop/testing/keras          Keras 3 in Python (JAX CPU) for the Keras round trips: build, load, predict
 *   @metaloop/testing/load-recorder  `node --import` preload recording every module a process loads
 * Product packages' unit tests import it without declaring it (it depends on them: declaring it
 * would make a cycle); turbo.json makes every test, lint and typecheck task wait for its build.
 */
export { freePort } from './ports.js';
export { METALOOP, METALOOP_COORDINATOR, ROOT, SINUSOID, WORKER } from './paths.js';
export { httpStatus, Proc, requireExecutable, sleep, waitFor } from './proc.js';
export { childPids, CLI, killAll, runCommand, runMetaloop, type Ran, type RunCommandOptions } from './run-cli.js';
export { FakeKubeApi, SCALE_PATH, type Recorded } from './fake-kube-api.js';
export { QuadraticWorker, type QuadraticWorkerOptions } from './quadratic-worker.js';
export { permissionError, type StatusSource } from './nats-permissions.js';
export { startInProcCluster, type ClusterWorkerOptions, type InProcCluster, type ServingCoordinator } from './in-proc-cluster.js';
export { transportContract, type ContractBackend, type ContractCluster, type ContractSettings } from './transport/contract.js';
