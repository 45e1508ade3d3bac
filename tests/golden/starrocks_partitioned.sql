CREATE TABLE IF NOT EXISTS `analytics`.`Events` (
  `EventId` BIGINT NOT NULL,
  `OccurredAt` DATETIME NOT NULL,
  `Kind` VARCHAR(60) NOT NULL,
  `Payload` VARCHAR(1048576) NULL,
  `Amount` DECIMAL(12,2) NULL,
  `Source_Host` VARCHAR(192) NULL COMMENT 'source column: Source Host'
) ENGINE=OLAP
PRIMARY KEY(`EventId`, `OccurredAt`)
COMMENT 'events of [sales].[Events]: it\'s a \\ test'
PARTITION BY date_trunc('day', `OccurredAt`)
DISTRIBUTED BY HASH(`EventId`, `OccurredAt`)
