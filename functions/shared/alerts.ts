import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';

/** Where human-readable alerts go: the SNS topic in AWS; in the local run, its report. */
export interface AlertSink {
  notify(alert: { subject: string; message: string }): Promise<void>;
}

export function snsAlertSink(topicArn: string, client: SNSClient = new SNSClient({})): AlertSink {
  return {
    async notify({ subject, message }) {
      // SNS subjects are limited to 100 printable ASCII characters.
      const safeSubject = subject.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
      await client.send(new PublishCommand({ TopicArn: topicArn, Subject: safeSubject, Message: message }));
    },
  };
}

export function collectingAlertSink(): AlertSink & { sent: { subject: string; message: string }[] } {
  const sent: { subject: string; message: string }[] = [];
  return {
    sent,
    async notify(alert) {
      sent.push(alert);
      return Promise.resolve();
    },
  };
}
