// The custom search attributes the workflows set (registered by the local stack; see README for a real cluster).
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DEPLOYMENT = defineSearchAttributeKey('VaultpamDeployment', SearchAttributeType.KEYWORD);
export const BACKUP_ID = defineSearchAttributeKey('VaultpamBackupId', SearchAttributeType.KEYWORD);
export const STEP = defineSearchAttributeKey('VaultpamStep', SearchAttributeType.KEYWORD);
export const STATUS = defineSearchAttributeKey('VaultpamStatus', SearchAttributeType.KEYWORD);
export const OPERATION = defineSearchAttributeKey('VaultpamOperation', SearchAttributeType.KEYWORD);

export const searchAttributeNames = ['VaultpamDeployment', 'VaultpamBackupId', 'VaultpamStep', 'VaultpamStatus', 'VaultpamOperation'] as const;
