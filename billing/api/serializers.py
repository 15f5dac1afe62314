from rest_framework import serializers


class LedgerEntryOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    amount = serializers.IntegerField()
    kind = serializers.CharField()
    balanceAfter = serializers.IntegerField(source="balance_after")
    reason = serializers.CharField()
    referenceType = serializers.CharField(source="reference_type")
    referenceId = serializers.CharField(source="reference_id")
    category = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")


class RateLimitOutput(serializers.Serializer):
    requestsPerMinute = serializers.IntegerField()
    parallelTasks = serializers.IntegerField()


class UsageOutput(serializers.Serializer):
    credits = serializers.IntegerField()
    plan = serializers.CharField()
    used = serializers.DictField(child=serializers.IntegerField(), help_text="Jobs charged (net of refunds) per type.")
    creditsUsedByType = serializers.DictField(child=serializers.IntegerField())
    creditsUsedThisCycle = serializers.IntegerField()
    cycleStart = serializers.DateTimeField()
    cycleEnd = serializers.DateTimeField()
    rateLimit = RateLimitOutput()
