/**
 * The package's public surface: the constructs and their props types. Nothing from `local/`, `scripts/`
 * or the handlers' code is exported; the handlers ship prebuilt under `dist/handlers/`.
 */
export { Catalog, type CatalogOptions, type CatalogProps } from './catalog';
export { Compaction, type CompactionOptions, type CompactionProps } from './compaction';
export { DataLake, type DataLakeProps, type FleetEventFilter, type LakeLifecycle } from './data-lake';
export { Erasure, type ErasureObjectGrant, type ErasureOptions, type ErasureProps } from './erasure';
export { FleetCheck, type FleetCheckOptions, type FleetCheckProps } from './fleet-check';
export { HouseFunction, type HouseFunctionProps } from './function';
export { DeliveryBuffer, Landing, type LandingProps } from './landing';
export { type MonitoredQuarantine, Monitoring, type MonitoringOptions, type MonitoringProps } from './monitoring';
export { NagAcknowledgements } from './nag-acknowledgements';
export type { OperatorCommands, OutputsOptions } from './operations';
export { Quarantine, type QuarantineOptions, type QuarantineProps } from './quarantine';
export { Receiver, ReceiverEndpoint, type ReceiverProps, type ReceiverThrottle } from './receiver';
export { Reconcile, ReconcileMode, type ReconcileOptions, type ReconcileProps, SmartcarApi } from './reconcile';
export type { RetentionOptions } from './retention';
export { type FleetEventsOptions, SmartcarWebhooks, type SmartcarWebhooksProps } from './smartcar-webhooks';
export {
  SubscriptionWorkflow,
  type SubscriptionWorkflowOptions,
  type SubscriptionWorkflowProps,
} from './subscription-workflow';
