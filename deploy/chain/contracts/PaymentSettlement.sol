// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title paystream treasury and batched settlement
/// @notice Holds the treasury in one ERC-20 token, takes deposits for payer
/// accounts, and pays batches of payments in one call. Every payment carries a
/// sequence number assigned by the engine; a bitmap over those numbers makes
/// sure that no payment is ever paid twice. A payment's fee goes to the
/// platform's fee recipient, the rest to the payee. Batches above a value
/// threshold need M-of-N EIP-712 approvals from registered signers, and all
/// settlement together is limited by a rolling daily cap (a token bucket).
/// Roles: the admin (policy, signers, cap, withdrawals, unpause), the operator
/// (sends batches) and the pauser (stops settlement and deposits at once).
/// @dev Packed batch format (`payments`), 56 bytes per payment, big-endian:
///   [0..20)  payee address
///   [20..32) amount (uint96, token base units, what the payer pays)
///   [32..40) sequence number (uint64, the engine's payment number)
///   [40..48) payer reference (uint64, the engine's account reference)
///   [48..56) fee (uint64, below the amount; the payee receives amount - fee)
contract PaymentSettlement is AccessControl, Pausable, ReentrancyGuard, EIP712 {
    using SafeERC20 for IERC20;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant BATCH_APPROVAL_TYPEHASH =
        keccak256("BatchApproval(uint64 batchId,bytes32 paymentsHash,uint256 nonce,uint256 deadline)");
    uint256 private constant RECORD_BYTES = 56;
    uint256 public constant MAX_BATCH = 1024;

    IERC20 public immutable token;

    /// @notice Sequence number => paid, 256 per storage word.
    mapping(uint256 => uint256) private _settledWords;
    /// @notice Registered approval signers; `signerCount` of them are active.
    mapping(address => bool) public isSigner;
    uint256 public signerCount;
    /// @notice Approvals needed (M) for a batch whose total exceeds `approvalThreshold`.
    uint256 public requiredApprovals;
    uint256 public approvalThreshold;
    /// @notice Approval nonces already consumed.
    mapping(uint256 => bool) public approvalNonceUsed;
    /// @notice Where the fees of each batch go, in one transfer per batch.
    address public feeRecipient;

    /// @notice The rolling daily cap on settlement, a token bucket in one slot:
    /// up to `capacity` may be paid at once, and what was paid flows back at
    /// `capacity` per day. Any 24 hours pay at most 2 x `capacity`, and any
    /// longer stretch at most `capacity` per day plus one `capacity`.
    struct DailyCap {
        uint96 capacity;
        uint96 available;
        uint64 updatedAt;
    }

    DailyCap public dailyCap;

    /// @notice One per settled payment, kept lean because it is paid 200 times a
    /// batch: an anonymous log (no topic) whose data are the payment's sequence
    /// number and payer reference and, when it is not 0, its fee (uint64 each),
    /// big-endian (16 or 24 bytes), emitted right after the token's `Transfer(treasury, payee,
    /// amount - fee)` of the same payment. Payee and net amount are read from
    /// that Transfer (what the token really moved), the batch id from the
    /// `BatchSettled` that closes the transaction, after the one fee transfer
    /// of the batch. It is this contract's only log without topics.
    /// Solidity cannot declare such an event, so it is emitted with `log0`.
    event BatchSettled(
        uint64 indexed batchId, uint256 paidCount, uint256 skippedCount, uint256 paidAmount, uint256 feeAmount
    );
    /// @notice `account` is the engine's account id (1-64 of [A-Za-z0-9_-]);
    /// `accountRef` = uint64(bytes8(keccak256(account))) lets clients filter by account.
    event Deposited(uint64 indexed accountRef, address indexed from, uint256 amount, string account);
    event Withdrawn(address indexed to, uint256 amount);
    event SignerSet(address indexed signer, bool active);
    event ApprovalPolicySet(uint256 requiredApprovals, uint256 approvalThreshold);
    event FeeRecipientSet(address indexed feeRecipient);
    event DailyCapSet(uint256 capacity);

    error EmptyOrMalformedBatch(uint256 length);
    error BatchTooLarge(uint256 count);
    error ApprovalsRequired(uint256 total, uint256 threshold);
    error ApprovalExpired(uint256 deadline);
    error ApprovalNonceUsed(uint256 nonce);
    error NotEnoughApprovals(uint256 valid, uint256 required);
    error SignersNotAscending(address signer);
    error UnknownSigner(address signer);
    error ZeroAmount();
    error AmountTooLarge(uint256 amount);
    error FeeNotBelowAmount(uint256 sequence);
    error InvalidFeeRecipient();
    error InvalidAccount();
    error InvalidPolicy();
    error TokenHasNoCode(address token);
    error TransferFailed(address payee, uint256 amount);
    error DailyCapExceeded(uint256 amount, uint256 available);

    constructor(
        IERC20 token_,
        address admin,
        address operator,
        address pauser,
        address feeRecipient_,
        address[] memory signers,
        uint256 requiredApprovals_,
        uint256 approvalThreshold_,
        uint96 dailyCapacity
    ) EIP712("PaymentSettlement", "1") {
        // Checked once here so the per-payment transfer need not (see _pay).
        if (address(token_).code.length == 0) revert TokenHasNoCode(address(token_));
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        _grantRole(PAUSER_ROLE, pauser);
        _setFeeRecipient(feeRecipient_);
        _setDailyCap(dailyCapacity);
        for (uint256 i = 0; i < signers.length; ++i) {
            _setSigner(signers[i], true);
        }
        _setApprovalPolicy(requiredApprovals_, approvalThreshold_);
    }

    // ----------------------------------------------------------------- deposits

    /// @notice Pull `amount` of the token from the caller into the treasury and
    /// credit it to the engine's account `account`.
    /// The engine keeps amounts below 2^96: a larger one is refused (`AmountTooLarge`).
    function deposit(string calldata account, uint256 amount) external whenNotPaused nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (amount > type(uint96).max) revert AmountTooLarge(amount);
        _checkAccount(bytes(account));
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(uint64(bytes8(keccak256(bytes(account)))), msg.sender, amount, account);
    }

    /// @dev The engine's account id syntax: 1 to 64 of [A-Za-z0-9_-].
    function _checkAccount(bytes calldata account) private pure {
        if (account.length == 0 || account.length > 64) revert InvalidAccount();
        for (uint256 i = 0; i < account.length; ++i) {
            bytes1 c = account[i];
            bool ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
                || c == "_" || c == "-";
            if (!ok) revert InvalidAccount();
        }
    }

    // --------------------------------------------------------------- settlement

    /// @notice Settle a batch whose total is at most `approvalThreshold`
    /// (and what it pays within the daily cap).
    function settleBatch(uint64 batchId, bytes calldata payments)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
        nonReentrant
    {
        uint256 total = _settle(batchId, payments);
        if (total > approvalThreshold) revert ApprovalsRequired(total, approvalThreshold);
    }

    /// @notice Settle a batch with M-of-N signer approvals over
    /// `BatchApproval(batchId, keccak256(payments), nonce, deadline)`.
    /// Signatures are 65 bytes (r, s, v), ordered by strictly ascending signer address.
    function settleBatchApproved(
        uint64 batchId,
        bytes calldata payments,
        uint256 nonce,
        uint256 deadline,
        bytes[] calldata signatures
    ) external onlyRole(OPERATOR_ROLE) whenNotPaused nonReentrant {
        _checkApprovals(batchId, keccak256(payments), nonce, deadline, signatures);
        _settle(batchId, payments);
    }

    /// @notice True when the payment with this sequence number has been paid.
    function isSettled(uint64 sequence) external view returns (bool) {
        return (_settledWords[sequence >> 8] >> (sequence & 0xff)) & 1 == 1;
    }

    /// @notice The EIP-712 digest the signers sign for a batch.
    function approvalDigest(uint64 batchId, bytes32 paymentsHash, uint256 nonce, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(BATCH_APPROVAL_TYPEHASH, batchId, paymentsHash, nonce, deadline)));
    }

    function _checkApprovals(
        uint64 batchId,
        bytes32 paymentsHash,
        uint256 nonce,
        uint256 deadline,
        bytes[] calldata signatures
    ) private {
        if (block.timestamp > deadline) revert ApprovalExpired(deadline);
        if (approvalNonceUsed[nonce]) revert ApprovalNonceUsed(nonce);
        approvalNonceUsed[nonce] = true;
        bytes32 digest = approvalDigest(batchId, paymentsHash, nonce, deadline);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            // OpenZeppelin's ECDSA rejects malleable (high-s) signatures.
            address signer = ECDSA.recover(digest, signatures[i]);
            if (signer <= previous) revert SignersNotAscending(signer);
            if (!isSigner[signer]) revert UnknownSigner(signer);
            previous = signer;
        }
        if (signatures.length < requiredApprovals) {
            revert NotEnoughApprovals(signatures.length, requiredApprovals);
        }
    }

    /// @dev Pays every payment of the batch not paid before (amount - fee to its
    /// payee), then the batch's fees to the fee recipient; takes what it paid
    /// from the daily cap; returns the batch total.
    /// The hot loop reads calldata directly and keeps the current bitmap word in
    /// memory; amounts are uint96 and batches at most MAX_BATCH long, so the sums
    /// cannot overflow.
    function _settle(uint64 batchId, bytes calldata payments) private returns (uint256 total) {
        uint256 length = payments.length;
        if (length == 0 || length % RECORD_BYTES != 0) revert EmptyOrMalformedBatch(length);
        uint256 count = length / RECORD_BYTES;
        if (count > MAX_BATCH) revert BatchTooLarge(count);

        uint256 paidCount;
        uint256 paidAmount;
        uint256 feeAmount;
        uint256 wordIndex = type(uint256).max;
        uint256 word;
        uint256 at;
        assembly {
            at := payments.offset
        }
        unchecked {
            for (uint256 end = at + length; at < end; at += RECORD_BYTES) {
                uint256 payment;
                uint256 refs; // sequence 8 | payer reference 8 | fee 8 | 8 bytes beyond
                assembly {
                    payment := calldataload(at)
                    refs := calldataload(add(at, 32))
                }
                uint256 amount = payment & type(uint96).max;
                uint256 sequence = refs >> 192;
                uint256 fee = (refs >> 64) & type(uint64).max;
                if (amount <= fee) {
                    if (amount == 0) revert ZeroAmount();
                    revert FeeNotBelowAmount(sequence);
                }
                total += amount;
                if (sequence >> 8 != wordIndex) {
                    if (wordIndex != type(uint256).max) _settledWords[wordIndex] = word;
                    wordIndex = sequence >> 8;
                    word = _settledWords[wordIndex];
                }
                uint256 bit = 1 << (sequence & 0xff);
                if (word & bit != 0) continue; // paid before: never move these funds again
                word |= bit;
                _pay(payment >> 96, amount - fee);
                assembly {
                    // PaymentSettled: sequence | payer reference (| fee, when not 0).
                    let ptr := mload(0x40)
                    let size := add(16, mul(8, iszero(iszero(fee))))
                    calldatacopy(ptr, add(at, 32), size)
                    log0(ptr, size)
                }
                ++paidCount;
                paidAmount += amount;
                feeAmount += fee;
            }
        }
        _settledWords[wordIndex] = word;
        _spend(paidAmount);
        if (feeAmount != 0) _pay(uint256(uint160(feeRecipient)), feeAmount);
        emit BatchSettled(batchId, paidCount, count - paidCount, paidAmount, feeAmount);
    }

    /// @dev `token.transfer(payee, amount)` with SafeERC20's acceptance rule
    /// (no return data, or a true return value); the token's code was checked
    /// in the constructor.
    function _pay(uint256 payee, uint256 amount) private {
        address tokenAddress = address(token);
        bool ok;
        assembly {
            let ptr := mload(0x40)
            mstore(ptr, shl(224, 0xa9059cbb)) // transfer(address,uint256)
            mstore(add(ptr, 4), payee)
            mstore(add(ptr, 36), amount)
            ok := call(gas(), tokenAddress, 0, ptr, 68, 0, 32)
            ok := and(ok, or(iszero(returndatasize()), and(gt(returndatasize(), 31), eq(mload(0), 1))))
        }
        if (!ok) revert TransferFailed(address(uint160(payee)), amount);
    }

    /// @dev Take `amount` from the daily cap's bucket, refilled first for the
    /// time since its last use (capacity x elapsed / 1 day, up to capacity).
    /// A node may simulate at a time before the bucket's last use (an anvil
    /// gas estimate did): no time has passed then.
    function _spend(uint256 amount) private {
        DailyCap memory cap = dailyCap;
        uint256 elapsed = block.timestamp > cap.updatedAt ? block.timestamp - cap.updatedAt : 0;
        uint256 available = cap.available + uint256(cap.capacity) * elapsed / 1 days;
        if (available > cap.capacity) available = cap.capacity;
        if (amount > available) revert DailyCapExceeded(amount, available);
        dailyCap = DailyCap(cap.capacity, uint96(available - amount), uint64(block.timestamp));
    }

    // -------------------------------------------------------------------- admin

    function setSigner(address signer, bool active) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setSigner(signer, active);
        _setApprovalPolicy(requiredApprovals, approvalThreshold);
    }

    function setApprovalPolicy(uint256 requiredApprovals_, uint256 approvalThreshold_)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setApprovalPolicy(requiredApprovals_, approvalThreshold_);
    }

    function setFeeRecipient(address feeRecipient_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setFeeRecipient(feeRecipient_);
    }

    /// @notice A new cap starts full.
    function setDailyCap(uint96 capacity) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setDailyCap(capacity);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @notice Move treasury funds out (admin only), e.g. to rebalance.
    function withdraw(address to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        if (amount == 0) revert ZeroAmount();
        token.safeTransfer(to, amount);
        emit Withdrawn(to, amount);
    }

    function _setDailyCap(uint96 capacity) private {
        dailyCap = DailyCap(capacity, capacity, uint64(block.timestamp));
        emit DailyCapSet(capacity);
    }

    function _setFeeRecipient(address feeRecipient_) private {
        if (feeRecipient_ == address(0) || feeRecipient_ == address(this)) revert InvalidFeeRecipient();
        feeRecipient = feeRecipient_;
        emit FeeRecipientSet(feeRecipient_);
    }

    function _setSigner(address signer, bool active) private {
        if (isSigner[signer] == active) return;
        isSigner[signer] = active;
        if (active) ++signerCount;
        else --signerCount;
        emit SignerSet(signer, active);
    }

    function _setApprovalPolicy(uint256 required, uint256 threshold) private {
        if (required == 0 || required > signerCount) revert InvalidPolicy();
        requiredApprovals = required;
        approvalThreshold = threshold;
        emit ApprovalPolicySet(required, threshold);
    }
}
